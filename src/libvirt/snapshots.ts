/**
 * Named snapshots of a libvirt VM (issue 15 §3): the QEMU backend's own (src/qemu/snapshots.ts),
 * qcow2 internal snapshots of the VM's writable disks with its memory while it runs, through QEMU's
 * `snapshot-save` / `snapshot-load` / `snapshot-delete` jobs, which here go through libvirt's
 * monitor (`virsh qemu-monitor-command`: libvirt owns QEMU's QMP socket), and `qemu-img snapshot`
 * while it is stopped. Not libvirt's snapshot API: its metadata belongs to the domain, which tend
 * undefines on a move to the QEMU backend and on a destroy; the snapshots themselves live in the
 * disk files, so they survive every redefine, restart and move, as on QEMU (docs/decisions.md).
 */
import type { Project } from '../../schemas/model.js';
import type { SnapshotInfo, SnapshotRestore, Snapshots } from '../../schemas/ports.js';
import { BackendError, UsageError } from '../../schemas/errors.js';
import { vmFile } from '../state/paths.js';
import {
  diskSnapshotsOf,
  removeSnapshotOf,
  restoreSnapshotOf,
  saveSnapshotOf,
  snapshotDisks,
  type SnapshotMonitor,
  type SnapshotVm,
} from '../qemu/snapshots.js';
import { domainName } from './names.js';
import { abortIf, ACTIVE, metadataOf, pdir, row, type LibvirtContext } from './context.js';
import { discardManagedSave } from './managed-save.js';

/** QMP commands through libvirt (`virsh qemu-monitor-command DOM JSON`). */
export function virshMonitor(ctx: LibvirtContext, dom: string): SnapshotMonitor {
  return {
    async execute<T = unknown>(command: string, args?: Record<string, unknown>, o: { timeoutMs?: number } = {}): Promise<T> {
      const out = await ctx.virsh.run(
        ['qemu-monitor-command', dom, JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })],
        {
          timeoutMs: o.timeoutMs ?? 10_000,
        },
      );
      let reply: { return?: T; error?: { class?: string; desc?: string } };
      try {
        reply = JSON.parse(out) as typeof reply;
      } catch {
        throw new BackendError('QmpCommandFailed', `QMP ${command} through libvirt: an answer that is not JSON: ${out.slice(0, 200)}`);
      }
      if (reply.error)
        throw new BackendError('QmpCommandFailed', `QMP ${command}: ${reply.error.class ?? 'Error'}: ${reply.error.desc ?? 'failed'}`);
      return reply.return as T;
    },
    close() {},
  };
}

async function locate(ctx: LibvirtContext, project: Project, name: string, signal?: AbortSignal): Promise<SnapshotVm> {
  abortIf(signal);
  if (!ctx.local)
    throw new UsageError(
      `${name}: snapshots of a VM on a remote libvirt host are not supported yet (its disks are files of that host)`,
      'SnapshotsUnsupported',
    );
  const pd = pdir(ctx, project);
  const dom = domainName(project, name);
  const m = await metadataOf(ctx, dom, false, signal);
  const disks = await snapshotDisks(pd, name, m?.spec ?? project.vms.find((v) => v.name === name));
  const r = await row(ctx, dom, signal);
  const running = r !== null && ACTIVE.has(r.state);
  return {
    pd,
    name,
    disks,
    monitor: running ? () => Promise.resolve(virshMonitor(ctx, dom)) : null,
    // a disk moved under a managed save: libvirt would restore it onto the wrong disk
    discardSaved: () => discardManagedSave(ctx, pd, name, dom, signal),
  };
}

export function libvirtSnapshots(ctx: LibvirtContext): Snapshots {
  return {
    async listSnapshots(project: Project, name: string, signal?: AbortSignal): Promise<SnapshotInfo[]> {
      abortIf(signal);
      return diskSnapshotsOf(vmFile(pdir(ctx, project), name, 'disk'));
    },
    saveSnapshot: async (p, n, snap, s): Promise<SnapshotInfo> => saveSnapshotOf(await locate(ctx, p, n, s), snap, ctx.clock, s),
    restoreSnapshot: async (p, n, snap, s): Promise<SnapshotRestore> => restoreSnapshotOf(await locate(ctx, p, n, s), snap, ctx.clock, s),
    removeSnapshot: async (p, n, snap, s): Promise<void> => removeSnapshotOf(await locate(ctx, p, n, s), snap, ctx.clock, s),
  };
}
