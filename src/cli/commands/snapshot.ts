/**
 * `tend snapshot save|restore|ls|rm NAME [SNAP]` (issue 15 §3): named snapshots of a VM's disks,
 * and of its memory while it runs (src/qemu/snapshots.ts). A restore onto a running VM puts the
 * guest back where it was: its clock is stepped to the host's and its readiness checked again (as
 * after a restore of a saved state); the provisioning record goes back with the disk.
 */
import { EXIT, UsageError } from '../../../schemas/errors.js';
import type { SnapshotInfo, Snapshots } from '../../../schemas/ports.js';
import type { CliCommand, Invocation } from '../command.js';
import { withProjectLock } from '../../state/lock.js';
import { depsFor, loadContext, lockOptions, type GlobalOptions } from '../context.js';
import { formatDuration, table } from '../output.js';

export type SnapshotVerb = 'save' | 'restore' | 'ls' | 'rm';

export interface SnapshotCommandOptions extends GlobalOptions {
  verb: SnapshotVerb;
  name: string;
  /** the snapshot; `save` without one names it by the time */
  snap?: string;
  /** live lines (readiness after a restore) */
  onLine?: (line: string) => void;
}

export type SnapshotResult =
  | { verb: 'ls'; vm: string; snapshots: SnapshotInfo[] }
  | { verb: 'save'; vm: string; snapshot: SnapshotInfo }
  | { verb: 'restore'; vm: string; snapshot: string; running: boolean; memory: boolean }
  | { verb: 'rm'; vm: string; snapshot: string };

function defaultName(now: Date): string {
  return `snap-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}`;
}

export async function snapshotCommand(o: SnapshotCommandOptions): Promise<SnapshotResult> {
  const ctx = await loadContext({ ...o, fromState: true }, o.name);
  const deps = await depsFor(ctx);
  const b = deps.backend as Partial<Snapshots>;
  if (!b.listSnapshots || !b.saveSnapshot || !b.restoreSnapshot || !b.removeSnapshot)
    throw new UsageError(`${o.name}: this backend has no snapshots (use backend: qemu)`, 'SnapshotsUnsupported');
  const s = b as Snapshots;
  if (o.verb === 'ls') return { verb: 'ls', vm: o.name, snapshots: await s.listSnapshots(ctx.project, o.name, o.signal) };
  const snap = o.snap ?? (o.verb === 'save' ? defaultName(new Date()) : undefined);
  if (!snap)
    throw new UsageError(`tend snapshot ${o.verb} needs a snapshot name: tend snapshot ${o.verb} ${o.name} SNAP`, 'MissingArgument');
  return withProjectLock(ctx.projDir, lockOptions(ctx, `snapshot ${o.verb} ${o.name} ${snap}`), async () => {
    switch (o.verb) {
      case 'save':
        return { verb: 'save' as const, vm: o.name, snapshot: await s.saveSnapshot(ctx.project, o.name, snap, o.signal) };
      case 'rm':
        await s.removeSnapshot(ctx.project, o.name, snap, o.signal);
        return { verb: 'rm' as const, vm: o.name, snapshot: snap };
      default: {
        const r = await s.restoreSnapshot(ctx.project, o.name, snap, o.signal);
        const spec = ctx.project.vms.find((v) => v.name === o.name);
        if (r.running && spec) {
          // the guest is back in the past: step its clock, check it answers (not cloud-init again)
          await deps.backend.markReady?.(ctx.project, o.name, false);
          await deps.guest.waitReady(ctx.project, spec, o.signal, { restored: true });
          await deps.backend.markReady?.(ctx.project, o.name, true);
        }
        return { verb: 'restore' as const, vm: o.name, snapshot: snap, ...r };
      }
    }
  });
}

export function renderSnapshot(r: SnapshotResult, now: number = Date.now()): string {
  switch (r.verb) {
    case 'ls':
      if (r.snapshots.length === 0) return `${r.vm} has no snapshots`;
      return table(
        ['NAME', 'CREATED', 'MEMORY'],
        r.snapshots.map((s) => [
          s.name,
          `${formatDuration(now - s.createdAt)} ago`,
          s.vmState ? `${Math.round(s.vmStateBytes / 1048576)} MiB` : 'no (disks only)',
        ]),
      );
    case 'save':
      return `${r.vm}: snapshot ${r.snapshot.name} saved (${r.snapshot.vmState ? 'disks and memory' : 'disks only: the VM is stopped'})`;
    case 'restore':
      return r.memory
        ? `${r.vm}: back at snapshot ${r.snapshot} (disks and memory; guest clock set to now)`
        : `${r.vm}: disks back at snapshot ${r.snapshot} (the VM is stopped: it boots from them at its next start)`;
    case 'rm':
      return `${r.vm}: snapshot ${r.snapshot} removed`;
  }
}

function verb(v: SnapshotVerb, description: string, configure: CliCommand['configure']): CliCommand {
  return {
    name: v,
    ...(v === 'ls' ? { aliases: ['list'] } : {}),
    description,
    configure,
    async run({ g, args, io }: Invocation) {
      const [name, snap] = args as [string, string | undefined];
      const r = await snapshotCommand({ ...g, verb: v, name, ...(snap ? { snap } : {}) });
      if (g.json) io.json(r);
      else io.out(renderSnapshot(r));
      return EXIT.ok;
    },
  };
}

export const command: CliCommand = {
  name: 'snapshot',
  description: 'named snapshots of a VM (disks, and memory while it runs): save, restore, ls, rm',
  examples: [
    'tend snapshot save web clean',
    'tend snapshot restore web clean',
    'tend snapshot ls web --json',
    'tend snapshot rm web clean',
  ],
  subcommands: [
    verb('save', 'snapshot the VM now (running: disks and memory; stopped: disks)', (c) =>
      c.argument('<name>', 'VM name').argument('[snap]', 'snapshot name (default: snap-<time>)'),
    ),
    verb('restore', 'put the VM back to a snapshot (running: disks and memory)', (c) =>
      c.argument('<name>', 'VM name').argument('<snap>', 'snapshot name'),
    ),
    verb('ls', "list the VM's snapshots", (c) => c.argument('<name>', 'VM name')),
    verb('rm', 'delete a snapshot', (c) => c.argument('<name>', 'VM name').argument('<snap>', 'snapshot name')),
  ],
};
