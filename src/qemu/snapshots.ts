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
import type { SnapshotInfo, SnapshotRestore } from '../../schemas/ports.js';
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

interface Located {
  pd: string;
  spec: VmSpec;
  disks: string[];
  pid: number | null;
}

async function locate(ctx: QemuContext, project: Project, name: string): Promise<Located> {
  const pd = pdir(ctx, project);
  const disk = vmFile(pd, name, 'disk');
  if (!(await exists(disk))) throw new NotFoundError('VmNotCreated', `${name} has no disk yet: nothing to snapshot (tend up first)`);
  const applied = await readApplied(ctx, project, name);
  const spec = applied?.spec ?? project.vms.find((v) => v.name === name);
  if (!spec) throw new BackendError('SnapshotFailed', `${name}: tend has no record of its disks`);
  const disks = [];
  for (const d of writableDisks(pd, spec)) if (d.endsWith('.qcow2') && (await exists(d))) disks.push(d);
  const live = await liveQemu(ctx, vmFile(pd, name, 'pid'), name);
  return { pd, spec, disks, pid: live?.pid ?? null };
}

function checkName(snap: string): void {
  if (!SNAPSHOT_NAME.test(snap))
    throw new UsageError(
      `snapshot name "${snap}" is not valid: use letters, digits, ".", "_" and "-" (at most 64, not starting with a sign)`,
    );
}

export async function listSnapshots(ctx: QemuContext, project: Project, name: string, signal?: AbortSignal): Promise<SnapshotInfo[]> {
  abortIf(signal);
  const pd = pdir(ctx, project);
  const disk = vmFile(pd, name, 'disk');
  if (!(await exists(disk))) return [];
  return diskSnapshots(disk);
}

async function find(ctx: QemuContext, project: Project, name: string, snap: string): Promise<SnapshotInfo> {
  const all = await listSnapshots(ctx, project, name);
  const s = all.find((x) => x.name === snap);
  if (!s)
    throw new NotFoundError(
      'SnapshotNotFound',
      `${name} has no snapshot "${snap}"${all.length ? ` (it has: ${all.map((x) => x.name).join(', ')})` : ''}: tend snapshot ls ${name}`,
    );
  return s;
}

/** QMP job of a running VM: start it, wait for it to conclude, report its error. */
async function runJob(
  ctx: QemuContext,
  pd: string,
  name: string,
  command: string,
  args: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<void> {
  const qmp = await QmpClient.connect(socketPath(pd, name, 'qmp', ctx.env), { timeoutMs: 2000, ...(signal ? { signal } : {}) });
  const jobId = `tend-${command}-${process.pid}-${Date.now()}`;
  try {
    await qmp.execute(command, { 'job-id': jobId, ...args }, { timeoutMs: 10_000 });
    for (;;) {
      const jobs = await qmp.execute<{ id: string; status: string; error?: string }[]>('query-jobs', undefined, { timeoutMs: 5000 });
      const job = jobs.find((j) => j.id === jobId);
      if (!job) throw new BackendError('SnapshotFailed', `${name}: QEMU's ${command} job vanished`);
      if (job.status === 'concluded') {
        await qmp.execute('job-dismiss', { id: jobId }, { timeoutMs: 5000 }).catch(() => undefined);
        if (job.error) throw new BackendError('SnapshotFailed', `${name}: ${command}: ${job.error}`);
        return;
      }
      await ctx.clock.sleep(100);
    }
  } finally {
    qmp.close();
  }
}

/** QMP block node names of the running VM's writable disks, by file. */
async function nodeNames(ctx: QemuContext, pd: string, name: string, disks: string[]): Promise<string[]> {
  const qmp = await QmpClient.connect(socketPath(pd, name, 'qmp', ctx.env), { timeoutMs: 2000 });
  try {
    const blocks = await qmp.execute<{ inserted?: { file: string; 'node-name': string; ro: boolean } }[]>('query-block', undefined, {
      timeoutMs: 5000,
    });
    return disks.map((d) => {
      const b = blocks.find((x) => x.inserted?.file === d && !x.inserted.ro);
      if (!b?.inserted) throw new BackendError('SnapshotFailed', `${name}: QEMU does not have ${d} open for writing`);
      return b.inserted['node-name'];
    });
  } finally {
    qmp.close();
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
  const v = await locate(ctx, project, name);
  if ((await listSnapshots(ctx, project, name)).some((s) => s.name === snap))
    throw new UsageError(
      `${name} already has a snapshot "${snap}": remove it first (tend snapshot rm ${name} ${snap}) or pick another name`,
      'SnapshotExists',
    );
  if (v.pid !== null) {
    const nodes = await nodeNames(ctx, v.pd, name, v.disks);
    await runJob(ctx, v.pd, name, 'snapshot-save', { tag: snap, vmstate: nodes[0], devices: nodes }, signal);
  } else {
    for (const d of v.disks) await qemuImgSnapshot('-c', snap, d);
  }
  const rec = recordPath(v.pd, name);
  if (await exists(rec)) await copyFile(rec, snapshotProvisionFile(v.pd, name, snap));
  else await rm(snapshotProvisionFile(v.pd, name, snap), { force: true });
  return find(ctx, project, name, snap);
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
  const v = await locate(ctx, project, name);
  const s = await find(ctx, project, name, snap);
  if (v.pid !== null) {
    if (!s.vmState)
      throw new UsageError(
        `${name}: snapshot "${snap}" has no memory state (it was taken while the VM was stopped): stop the VM, restore it, start it`,
        'SnapshotDiskOnly',
      );
    const nodes = await nodeNames(ctx, v.pd, name, v.disks);
    await runJob(ctx, v.pd, name, 'snapshot-load', { tag: snap, vmstate: nodes[0], devices: nodes }, signal);
    // snapshot-load resumes a guest that ran; make sure it does
    const qmp = await QmpClient.connect(socketPath(v.pd, name, 'qmp', ctx.env), { timeoutMs: 2000 });
    try {
      if (!(await qmp.queryStatus(2000)).running) await qmp.execute('cont', undefined, { timeoutMs: 5000 });
    } finally {
      qmp.close();
    }
  } else {
    for (const d of v.disks) await qemuImgSnapshot('-a', snap, d);
    // the disk moved: a saved state of the VM no longer belongs to it
    await discardSaved(v.pd, name);
  }
  const kept = snapshotProvisionFile(v.pd, name, snap);
  if (await exists(kept)) await copyFile(kept, recordPath(v.pd, name));
  else await rm(recordPath(v.pd, name), { force: true });
  return { running: v.pid !== null, memory: v.pid !== null };
}

export async function removeSnapshot(ctx: QemuContext, project: Project, name: string, snap: string, signal?: AbortSignal): Promise<void> {
  abortIf(signal);
  checkName(snap);
  const v = await locate(ctx, project, name);
  await find(ctx, project, name, snap);
  if (v.pid !== null) {
    const nodes = await nodeNames(ctx, v.pd, name, v.disks);
    await runJob(ctx, v.pd, name, 'snapshot-delete', { tag: snap, devices: nodes }, signal);
  } else {
    for (const d of v.disks) await qemuImgSnapshot('-d', snap, d);
  }
  await rm(snapshotProvisionFile(v.pd, name, snap), { force: true });
}
