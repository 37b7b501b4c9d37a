/** `tend status NAME`: everything known about one VM: spec, observation, plan, state paths. */
import { planVm, type PlanEntry } from '../../../controllers/plan.js';
import { alive, type ObservedVm } from '../../../schemas/ports.js';
import type { VmSpec } from '../../../schemas/model.js';
import { readStatus } from '../../state/status.js';
import { localPid } from '../../backend/host-label.js';
import { readBackendRecord } from '../../backend/record.js';
import { tapSshAddress } from '../../ssh/target.js';
import { backendFor, checkVmNames, loadContext, type GlobalOptions } from '../context.js';
import { formatDuration } from '../output.js';
import { planConditions } from '../conditions.js';
import { outputFormat, outputOptions, printResult } from '../output-format.js';
import type { CliCommand } from '../command.js';
import { EXIT } from '../../../schemas/errors.js';
import { NAME_FLAG, NAME_FLAG_HELP, vmName } from '../name-flag.js';

export interface StatusCommandOptions extends GlobalOptions {
  name: string;
}

export interface StatusResult {
  project: string;
  name: string;
  declared: boolean;
  spec: VmSpec | null;
  observed: ObservedVm | null;
  plan: PlanEntry | null;
  conditions: string[];
  /** the controller's last status record (status.json), when there is one */
  status: unknown;
  paths: Record<string, string>;
  /** where SSH reaches the running guest: the forwarded port, or a TAP guest's own address; null when unknown */
  ssh: string | null;
}

export async function statusCommand(o: StatusCommandOptions): Promise<StatusResult> {
  const ctx = await loadContext({ ...o, fromState: true }, o.name);
  const backend = await backendFor(ctx);
  const observed = await backend.observe(ctx.project, o.signal);
  checkVmNames(ctx.project, [o.name], Object.keys(observed.vms));
  const spec = ctx.project.vms.find((v) => v.name === o.name) ?? null;
  const seen = observed.vms[o.name] ?? null;
  // a VM on another host: its pid is the domain id there, not a process of this machine
  const obs = seen && { ...seen, pid: localPid(await readBackendRecord(ctx.projDir, o.name), seen.pid) };
  const entry: PlanEntry | null = spec
    ? planVm(spec, obs ?? undefined, { recreate: false })
    : { vm: o.name, action: 'orphan', changed: [], notes: ['no longer declared: `tend up --prune` deletes it'] };
  const paths = backend.locate(ctx.project, o.name);
  return {
    project: ctx.project.name,
    name: o.name,
    declared: spec !== null,
    spec,
    observed: obs,
    plan: entry,
    conditions: planConditions(entry, obs ?? undefined),
    status: (await readStatus(ctx.projDir, o.name)) ?? null,
    paths,
    ssh:
      !obs || !alive(obs.power)
        ? null
        : obs.sshPort
          ? `127.0.0.1:${obs.sshPort}`
          : spec?.network.mode === 'tap'
            ? await tapSshAddress(ctx.stateRoot, ctx.project, spec, ctx.env)
            : null,
  };
}

export function renderStatus(r: StatusResult, now: number = Date.now()): string {
  const o = r.observed;
  const lines: [string, string][] = [
    ['Name', r.name],
    ['Project', r.project],
    ['Declared', r.declared ? 'yes' : 'no (orphan)'],
    ['Power', o ? o.power : 'not created'],
    ['Disk', o?.exists ? 'exists' : 'none'],
    ['PID', o?.pid ? String(o.pid) : '-'],
    ['Accel', o?.accel ?? '-'],
    ['Up', o?.startedAt ? formatDuration(now - o.startedAt) : '-'],
    ['SSH', r.ssh ?? '-'],
    [
      'Ports',
      o && Object.keys(o.ports).length
        ? Object.entries(o.ports)
            .map(([g, h]) => `${h}->${g}`)
            .join(', ')
        : '-',
    ],
    [
      'Saved state',
      o?.saved
        ? `${o.saved.bytes !== null ? `${(o.saved.bytes / 1048576).toFixed(0)} MiB` : 'size unknown'}, saved ${o.saved.savedAt !== null ? `${formatDuration(now - o.saved.savedAt)} ago` : 'at an unknown time'} (the next start restores it)`
        : '-',
    ],
    ['Intent', o?.intent ?? '-'],
    ['Image', r.spec ? `${r.spec.image.kind}:${r.spec.image.ref}` : (o?.diskImage ?? '-')],
    ['CPUs/Memory', r.spec ? `${r.spec.cpus} / ${r.spec.memory} MiB` : '-'],
    ['Provisioned', o ? `${o.provisioned.length} of ${r.spec?.provision.length ?? '?'} steps` : '-'],
    ['Plan', r.plan ? `${r.plan.action}${r.plan.changed.length ? ` (${r.plan.changed.join('; ')})` : ''}` : '-'],
    ['Notes', r.plan?.notes.join('; ') || '-'],
    ['Conditions', r.conditions.join(', ') || '-'],
  ];
  if (o?.corrupt.length) lines.push(['Corrupt state', o.corrupt.join(', ')]);
  const w = Math.max(...lines.map(([k]) => k.length), ...Object.keys(r.paths).map((k) => k.length + 2));
  const out = lines.map(([k, v]) => `${(k + ':').padEnd(w + 1)} ${v}`);
  out.push('Paths:');
  for (const [k, v] of Object.entries(r.paths)) out.push(`  ${(k + ':').padEnd(w - 1)} ${v}`);
  return out.join('\n');
}

export const command: CliCommand = {
  name: 'status',
  description: 'everything known about one VM: spec, process, ports, plan, conditions, state paths',
  examples: ['tend status web', 'tend status web --json', 'tend status web -o yaml'],
  configure: (c) => outputOptions(c.argument('[name]', 'VM name').option(NAME_FLAG, NAME_FLAG_HELP), { wide: false }),
  async run({ g, args, opts, io }) {
    const format = outputFormat(g, opts);
    const r = await statusCommand({ ...g, name: vmName('status', args[0] as string | undefined, (opts as { name?: string }).name, true) });
    await printResult(io, format, { data: r, table: () => renderStatus(r), names: () => [r.name] });
    return EXIT.ok;
  },
};
