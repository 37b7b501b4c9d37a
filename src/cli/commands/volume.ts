/**
 * `tend volume ls | inspect NAME | rm NAME...`: the project's named volumes. A volume is a qcow2
 * file under the project's state folder that outlives every VM (down, --recreate, destroy,
 * prune); only `tend volume rm` and `tend down --volumes` delete one. `rm` refuses while a VM
 * of the project that mounts the volume still exists (running or stopped): destroy it first.
 */
import type { Backend, Observed, VolumeObserved, Volumes } from '../../../schemas/ports.js';
import type { Project } from '../../../schemas/model.js';
import { EXIT, NotFoundError, TendError, UsageError } from '../../../schemas/errors.js';
import { outputFormat, outputOptions, printResult } from '../output-format.js';
import type { CliCommand, Invocation } from '../command.js';
import { didYouMean } from '../../../schemas/names.js';
import { withProjectLock } from '../../state/lock.js';
import { backendFor, loadContext, lockOptions, type Context, type GlobalOptions } from '../context.js';
import { table } from '../output.js';

export interface VolumeInfo {
  name: string;
  /** declared in the project file (top-level volumes or a mount) */
  declared: boolean;
  /** declared size in GiB; null when not declared */
  size: number | null;
  /** the qcow2 file exists (created by the first `up` of a VM that mounts it) */
  created: boolean;
  path: string;
  /** bytes the file takes on the host; null when not created */
  allocated: number | null;
  /** virtual size in bytes (qemu-img); null when not created or unreadable */
  virtualSize: number | null;
  /** VMs whose spec mounts it, with the mount target and mode */
  mounts: { vm: string; target: string; readOnly: boolean }[];
  /** VMs that exist now (have state) and mount it: they block `rm` */
  usedBy: string[];
}

export interface VolumeCommandOptions extends GlobalOptions {
  verb: 'ls' | 'inspect' | 'rm';
  names?: string[];
}

export type VolumeResult =
  | { verb: 'ls'; project: string; volumes: VolumeInfo[] }
  | { verb: 'inspect'; project: string; volume: VolumeInfo }
  | { verb: 'rm'; project: string; removed: string[] };

/** Names of volumes: declared at top level, mounted by a VM, or present on disk. Sorted. */
export function volumeNames(project: Project, onDisk: readonly string[]): string[] {
  const names = new Set<string>([...Object.keys(project.volumes), ...onDisk]);
  for (const vm of project.vms) for (const m of vm.volumes) if (m.kind === 'named') names.add(m.name);
  return [...names].sort();
}

/**
 * Which existing VMs use a volume: a VM observed with state (disk or process) whose declared or
 * last-applied spec mounts it. Pure.
 */
export function volumeUsers(project: Project, observed: Observed, name: string): string[] {
  const users = new Set<string>();
  const mounts = (vols: Project['vms'][number]['volumes']): boolean => vols.some((m) => m.kind === 'named' && m.name === name);
  for (const [vm, o] of Object.entries(observed.vms)) {
    if (!o.exists && o.pid === null) continue;
    const spec = project.vms.find((v) => v.name === vm);
    if ((spec && mounts(spec.volumes)) || (o.applied && mounts(o.applied.volumes))) users.add(vm);
  }
  return [...users].sort();
}

function describe(
  ctx: Context,
  backend: VolumeBackend,
  observed: Observed,
  name: string,
  declaredNames: Set<string>,
  made: Map<string, VolumeObserved>,
): VolumeInfo {
  const v = made.get(name);
  const mounts: VolumeInfo['mounts'] = [];
  for (const vm of ctx.project.vms) {
    for (const m of vm.volumes)
      if (m.kind === 'named' && m.name === name) mounts.push({ vm: vm.name, target: m.target, readOnly: m.readOnly });
  }
  return {
    name,
    declared: declaredNames.has(name),
    size: ctx.project.volumes[name]?.size ?? null,
    created: v !== undefined,
    path: v?.path ?? backend.volumePath(ctx.project, name),
    allocated: v?.allocated ?? null,
    virtualSize: v?.virtualSize ?? null,
    mounts,
    usedBy: volumeUsers(ctx.project, observed, name),
  };
}

type VolumeBackend = Backend & Volumes;

function unknownVolume(name: string, known: string[]): NotFoundError {
  const guess = didYouMean(name, known);
  return new NotFoundError(
    'UnknownVolume',
    `no volume named "${name}"${guess ? `: did you mean "${guess}"?` : known.length ? `; the volumes are: ${known.join(', ')}` : ' (this project has none)'}`,
  );
}

export async function volumeCommand(o: VolumeCommandOptions): Promise<VolumeResult> {
  const ctx = await loadContext(o);
  const b = await backendFor(ctx);
  if (!b.listVolumes || !b.volumePath || !b.removeVolumes) throw new UsageError('this backend has no named volumes', 'VolumesUnsupported');
  const backend = b as VolumeBackend;
  const declared = new Set(volumeNames(ctx.project, []));
  const list = async (): Promise<{ observed: Observed; names: string[]; made: Map<string, VolumeObserved> }> => {
    const [observed, made] = await Promise.all([backend.observe(ctx.project, o.signal), backend.listVolumes(ctx.project, o.signal)]);
    return {
      observed,
      names: volumeNames(
        ctx.project,
        made.map((v) => v.name),
      ),
      made: new Map(made.map((v) => [v.name, v])),
    };
  };

  if (o.verb === 'ls') {
    const { observed, names, made } = await list();
    const volumes = names.map((n) => describe(ctx, backend, observed, n, declared, made));
    return { verb: 'ls', project: ctx.project.name, volumes };
  }
  const wanted = o.names ?? [];
  if (wanted.length === 0) throw new UsageError(`tend volume ${o.verb} needs a volume name`, 'MissingArgument');
  if (o.verb === 'inspect') {
    const { observed, names, made } = await list();
    if (!names.includes(wanted[0])) throw unknownVolume(wanted[0], names);
    return { verb: 'inspect', project: ctx.project.name, volume: describe(ctx, backend, observed, wanted[0], declared, made) };
  }

  return withProjectLock(ctx.projDir, lockOptions(ctx, `volume rm ${wanted.join(' ')}`), async () => {
    const { observed, names, made } = await list();
    for (const n of wanted) {
      if (!names.includes(n)) throw unknownVolume(n, names);
      const users = volumeUsers(ctx.project, observed, n);
      if (users.length > 0) {
        throw new TendError(
          'VolumeInUse',
          `volume "${n}" is used by ${users.join(', ')}: destroy ${users.length === 1 ? 'that VM' : 'those VMs'} first (tend destroy ${users[0]}) or use tend down --volumes`,
          EXIT.failure,
        );
      }
    }
    const doomed = wanted.filter((n) => made.has(n));
    if (doomed.length > 0) await backend.removeVolumes(ctx.project, doomed, o.signal);
    return { verb: 'rm', project: ctx.project.name, removed: doomed };
  });
}

function gib(bytes: number | null): string {
  if (bytes === null) return '-';
  const g = bytes / 1024 ** 3;
  return g >= 1 ? `${Number.isInteger(g) ? g : g.toFixed(1)}G` : `${Math.ceil(bytes / 1024 ** 2)}M`;
}

export function renderVolume(r: VolumeResult): string {
  switch (r.verb) {
    case 'ls':
      if (r.volumes.length === 0) return `project ${r.project} has no named volumes`;
      return table(
        ['NAME', 'SIZE', 'USED', 'MOUNTED BY', 'STATE'],
        r.volumes.map((v) => [
          v.name,
          v.virtualSize !== null ? gib(v.virtualSize) : v.size !== null ? `${v.size}G` : '-',
          gib(v.allocated),
          v.mounts.map((m) => `${m.vm}:${m.target}${m.readOnly ? ':ro' : ''}`).join(', ') || '-',
          v.created ? (v.declared ? 'created' : 'created (no longer declared)') : 'not created yet',
        ]),
      );
    case 'inspect': {
      const v = r.volume;
      return [
        `name:        ${v.name}`,
        `project:     ${r.project}`,
        `declared:    ${v.declared ? 'yes' : 'no (left over; tend volume rm deletes it)'}`,
        `size:        ${v.virtualSize !== null ? gib(v.virtualSize) : v.size !== null ? `${v.size}G (declared)` : '-'}`,
        `allocated:   ${gib(v.allocated)}`,
        `path:        ${v.created ? v.path : `${v.path} (not created yet)`}`,
        `mounts:      ${v.mounts.map((m) => `${m.vm}:${m.target}${m.readOnly ? ' (ro)' : ''}`).join(', ') || '-'}`,
        `in use by:   ${v.usedBy.join(', ') || '-'}`,
      ].join('\n');
    }
    case 'rm':
      return r.removed.length ? r.removed.map((n) => `removed volume ${n}`).join('\n') : 'nothing to remove (not created yet)';
  }
}

function volumeVerb(verb: VolumeCommandOptions['verb'], description: string, configure?: CliCommand['configure']): CliCommand {
  return {
    name: verb,
    ...(verb === 'ls' ? { aliases: ['list'] } : {}),
    description,
    ...(configure ? { configure } : {}),
    async run({ g, args, io, opts }: Invocation) {
      const format = outputFormat(g, opts);
      const names = args.flat().filter((a): a is string => typeof a === 'string');
      const r = await volumeCommand({ ...g, verb, names });
      await printResult(io, format, {
        data: r,
        table: () => renderVolume(r),
        ...(r.verb === 'ls' ? { names: () => r.volumes.map((v) => v.name) } : {}),
      });
      return EXIT.ok;
    },
  };
}

export const command: CliCommand = {
  name: 'volume',
  description: 'named volumes of the project: ls, inspect, rm (they outlive VMs)',
  examples: ['tend volume ls', 'tend volume inspect data', 'tend volume rm data'],
  subcommands: [
    volumeVerb('ls', 'list the named volumes: size, use, who mounts them', (c) => outputOptions(c, { wide: false })),
    volumeVerb('inspect', 'show one volume', (c) => c.argument('<name>', 'volume')),
    volumeVerb('rm', 'delete volumes (refused while a VM that mounts one exists)', (c) => c.argument('<names...>', 'volumes')),
  ],
};
