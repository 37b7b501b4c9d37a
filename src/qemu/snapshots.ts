/**
 * Named snapshots (issue 15 §3): qcow2 internal snapshots of the VM's writable disks (overlay and
 * named volumes), with the RAM and device state in the overlay when the VM runs (docs/decisions.md
 * says why internal and not external overlays). A running VM goes through QEMU's own
 * `snapshot-save` / `snapshot-load` / `snapshot-delete` jobs (QEMU ≥ 6.0); a stopped one through
 * `qemu-img snapshot` (disks only: there is no memory to keep). Snapshots live inside the disk
 * files, so they survive restarts, and go with the disk on a recreate.
 *
 * The provisioning record goes back with the disk: each snapshot keeps a copy of it, restored with
 * the snapshot, so steps run after the snapshot are due again.
 */
import { copyFile, rm } from 'node:fs/promises';
import { execa } from 'execa';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { Clock, SnapshotInfo, SnapshotRestore } from '../../schemas/ports.js';
import { BackendError, NotFoundError, UsageError } from '../../schemas/errors.js';
import { exists } from '../state/atomic.js';
import { snapshotProvisionFile, socketPath, vmFile } from '../state/paths.js';
import { recordPath } from '../provision/record.js';
import { QmpClient } from './qmp.js';
import { writableDisks } from './save.js';
import { discardSaved } from './saved-state.js';
import { diskSnapshots } from './disk-snapshots.js';
import { abortIf, liveQemu, pdir, readApplied, type QemuContext } from './context.js';

/** A snapshot name: a word that is also a safe file-name part. */
export const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The QMP commands snapshots need: QEMU's own socket, or libvirt's `qemu-monitor-command`. */
export interface SnapshotMonitor {
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts?: { timeoutMs?: number }): Promise<T>;
  close(): void;
}

/** A VM's disks as snapshots see them: which to snapshot, and its QEMU's monitor while it runs. */
export interface SnapshotVm {
  pd: string;
  name: string;
  /** its writable qcow2 disks that exist (overlay first: it holds the memory state) */
  disks: string[];
  /** opens a monitor of the running QEMU; null while the VM is stopped */
  monitor: ((signal?: AbortSignal) => Promise<SnapshotMonitor>) | null;
  /** the disks moved under a saved state (stop --save): it no longer belongs to them */
  discardSaved: () => Promise<void>;
}

/** The writable qcow2 disks of a VM (overlay first) that exist; throws when it has no disk yet. */
export async function snapshotDisks(pd: string, name: string, spec: VmSpec | undefined): Promise<string[]> {
  const disk = vmFile(pd, name, 'disk');
  if (!(await exists(disk))) throw new NotFoundError('VmNotCreated', `${name} has no disk yet: nothing to snapshot (tend up first)`);
  if (!spec) throw new BackendError('SnapshotFailed', `${name}: tend has no record of its disks`);
  const disks = [];
  for (const d of writableDisks(pd, spec)) if (d.endsWith('.qcow2') && (await exists(d))) disks.push(d);
  return disks;
}

async function locate(ctx: QemuContext, project: Project, name: string): Promise<SnapshotVm> {
  const pd = pdir(ctx, project);
  const applied = await readApplied(ctx, project, name);
  const disks = await snapshotDisks(pd, name, applied?.spec ?? project.vms.find((v) => v.name === name));
  const live = await liveQemu(ctx, vmFile(pd, name, 'pid'), name);
  return {
    pd,
    name,
    disks,
    monitor: live
      ? (signal?: AbortSignal) =>
          QmpClient.connect(socketPath(pd, name, 'qmp', ctx.env), { timeoutMs: 2000, ...(signal ? { signal } : {}) })
      : null,
    discardSaved: () => discardSaved(pd, name),
  };
}

function checkName(snap: string): void {
  if (!SNAPSHOT_NAME.test(snap))
    throw new UsageError(
      `snapshot name "${snap}" is not valid: use letters, digits, ".", "_" and "-" (at most 64, not starting with a sign)`,
    );
}

export async function listSnapshots(ctx: QemuContext, project: Project, name: string, signal?: AbortSignal): Promise<SnapshotInfo[]> {
  abortIf(signal);
  return diskSnapshotsOf(vmFile(pdir(ctx, project), name, 'disk'));
}

/** The snapshots of a VM's overlay, oldest first; [] without a disk. */
export async function diskSnapshotsOf(disk: string): Promise<SnapshotInfo[]> {
  if (!(await exists(disk))) return [];
  return diskSnapshots(disk);
}

async function find(v: SnapshotVm, snap: string): Promise<SnapshotInfo> {
  const all = await diskSnapshotsOf(vmFile(v.pd, v.name, 'disk'));
  const s = all.find((x) => x.name === snap);
  if (!s)
    throw new NotFoundError(
      'SnapshotNotFound',
      `${v.name} has no snapshot "${snap}"${all.length ? ` (it has: ${all.map((x) => x.name).join(', ')})` : ''}: tend snapshot ls ${v.name}`,
    );
  return s;
}

/** QMP job of a running VM: start it, wait for it to conclude, report its error. */
async function runJob(
  v: SnapshotVm,
  qmp: SnapshotMonitor,
  command: string,
  args: Record<string, unknown>,
  clock: Clock,
  signal?: AbortSignal,
): Promise<void> {
  abortIf(signal);
  const jobId = `tend-${command}-${process.pid}-${Date.now()}`;
  await qmp.execute(command, { 'job-id': jobId, ...args }, { timeoutMs: 10_000 });
  for (;;) {
    const jobs = await qmp.execute<{ id: string; status: string; error?: string }[]>('query-jobs', undefined, { timeoutMs: 5000 });
    const job = jobs.find((j) => j.id === jobId);
    if (!job) throw new BackendError('SnapshotFailed', `${v.name}: QEMU's ${command} job vanished`);
    if (job.status === 'concluded') {
      await qmp.execute('job-dismiss', { id: jobId }, { timeoutMs: 5000 }).catch(() => undefined);
      if (job.error) throw new BackendError('SnapshotFailed', `${v.name}: ${command}: ${job.error}`);
      return;
    }
    await clock.sleep(100);
  }
}

/** QMP block node names of the running VM's writable disks, by file. */
async function nodeNames(v: SnapshotVm, qmp: SnapshotMonitor): Promise<string[]> {
  const blocks = await qmp.execute<{ inserted?: { file: string; 'node-name': string; ro: boolean } }[]>('query-block', undefined, {
    timeoutMs: 5000,
  });
  return v.disks.map((d) => {
    const b = blocks.find((x) => x.inserted?.file === d && !x.inserted.ro);
    if (!b?.inserted) throw new BackendError('SnapshotFailed', `${v.name}: QEMU does not have ${d} open for writing`);
    return b.inserted['node-name'];
  });
}

/** A running VM's monitor for the duration of `f`. */
async function withMonitor<T>(v: SnapshotVm, signal: AbortSignal | undefined, f: (m: SnapshotMonitor) => Promise<T>): Promise<T> {
  const m = await v.monitor!(signal);
  try {
    return await f(m);
  } finally {
    m.close();
  }
}

async function qemuImgSnapshot(flag: '-c' | '-a' | '-d', snap: string, disk: string): Promise<void> {
  const r = await execa('qemu-img', ['snapshot', flag, snap, disk], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0)
    throw new BackendError(
      'SnapshotFailed',
      `qemu-img snapshot ${flag} ${snap} ${disk}: ${String(r.stderr).trim() || `exit ${r.exitCode}`}`,
    );
}

export async function saveSnapshot(
  ctx: QemuContext,
  project: Project,
  name: string,
  snap: string,
  signal?: AbortSignal,
): Promise<SnapshotInfo> {
  abortIf(signal);
  checkName(snap);
  return saveSnapshotOf(await locate(ctx, project, name), snap, ctx.clock, signal);
}

export async function saveSnapshotOf(v: SnapshotVm, snap: string, clock: Clock, signal?: AbortSignal): Promise<SnapshotInfo> {
  checkName(snap);
  if ((await diskSnapshotsOf(vmFile(v.pd, v.name, 'disk'))).some((s) => s.name === snap))
    throw new UsageError(
      `${v.name} already has a snapshot "${snap}": remove it first (tend snapshot rm ${v.name} ${snap}) or pick another name`,
      'SnapshotExists',
    );
  if (v.monitor) {
    await withMonitor(v, signal, async (qmp) => {
      const nodes = await nodeNames(v, qmp);
      await runJob(v, qmp, 'snapshot-save', { tag: snap, vmstate: nodes[0], devices: nodes }, clock, signal);
    });
  } else {
    for (const d of v.disks) await qemuImgSnapshot('-c', snap, d);
  }
  const rec = recordPath(v.pd, v.name);
  if (await exists(rec)) await copyFile(rec, snapshotProvisionFile(v.pd, v.name, snap));
  else await rm(snapshotProvisionFile(v.pd, v.name, snap), { force: true });
  return find(v, snap);
}

export async function restoreSnapshot(
  ctx: QemuContext,
  project: Project,
  name: string,
  snap: string,
  signal?: AbortSignal,
): Promise<SnapshotRestore> {
  abortIf(signal);
  checkName(snap);
  return restoreSnapshotOf(await locate(ctx, project, name), snap, ctx.clock, signal);
}

export async function restoreSnapshotOf(v: SnapshotVm, snap: string, clock: Clock, signal?: AbortSignal): Promise<SnapshotRestore> {
  checkName(snap);
  const s = await find(v, snap);
  if (v.monitor) {
    if (!s.vmState)
      throw new UsageError(
        `${v.name}: snapshot "${snap}" has no memory state (it was taken while the VM was stopped): stop the VM, restore it, start it`,
        'SnapshotDiskOnly',
      );
    await withMonitor(v, signal, async (qmp) => {
      const nodes = await nodeNames(v, qmp);
      await runJob(v, qmp, 'snapshot-load', { tag: snap, vmstate: nodes[0], devices: nodes }, clock, signal);
      // snapshot-load resumes a guest that ran; make sure it does
      const st = await qmp.execute<{ running: boolean }>('query-status', undefined, { timeoutMs: 2000 });
      if (!st.running) await qmp.execute('cont', undefined, { timeoutMs: 5000 });
    });
  } else {
    for (const d of v.disks) await qemuImgSnapshot('-a', snap, d);
    // the disk moved: a saved state of the VM no longer belongs to it
    await v.discardSaved();
  }
  const kept = snapshotProvisionFile(v.pd, v.name, snap);
  if (await exists(kept)) await copyFile(kept, recordPath(v.pd, v.name));
  else await rm(recordPath(v.pd, v.name), { force: true });
  return { running: v.monitor !== null, memory: v.monitor !== null };
}

export async function removeSnapshot(ctx: QemuContext, project: Project, name: string, snap: string, signal?: AbortSignal): Promise<void> {
  abortIf(signal);
  checkName(snap);
  await removeSnapshotOf(await locate(ctx, project, name), snap, ctx.clock, signal);
}

export async function removeSnapshotOf(v: SnapshotVm, snap: string, clock: Clock, signal?: AbortSignal): Promise<void> {
  checkName(snap);
  await find(v, snap);
  if (v.monitor) {
    await withMonitor(v, signal, async (qmp) => {
      const nodes = await nodeNames(v, qmp);
      await runJob(v, qmp, 'snapshot-delete', { tag: snap, devices: nodes }, clock, signal);
    });
  } else {
    for (const d of v.disks) await qemuImgSnapshot('-d', snap, d);
  }
  await rm(snapshotProvisionFile(v.pd, v.name, snap), { force: true });
}
