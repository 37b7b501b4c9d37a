/**
 * `tend ps`: one row per VM (declared ones, then orphans), all from observation now: power state,
 * accelerator, ports, age; READY and conditions from the controller's status record when there
 * is one, plus what the plan says (RecreateRequired, Orphan, StopIntent). `tend ps NAME` shows
 * only that VM's row (a `tend run` VM's too).
 */
import { plan } from '../../../controllers/plan.js';
import { EXIT } from '../../../schemas/errors.js';
import { alive } from '../../../schemas/ports.js';
import type { CliCommand } from '../command.js';
import { planConditions } from '../conditions.js';
import { tapSshAddress } from '../../ssh/target.js';
import { readStatus, type StatusRecord } from '../../state/status.js';
import { backendFor, loadContext, type GlobalOptions } from '../context.js';
import { formatDuration, formatMemory, table } from '../output.js';

export interface PsRow {
  name: string;
  /** running, paused, stopped, unknown, not-created, orphan */
  state: string;
  ready: boolean;
  accel: string | null;
  cpus: number | null;
  /** MiB */
  memory: number | null;
  /** guest "port/proto" -> host "addr:port" */
  ports: Record<string, string>;
  ssh: string | null;
  pid: number | null;
  startedAt: number | null;
  conditions: string[];
  declared: boolean;
}

export interface PsResult {
  project: string;
  vms: PsRow[];
}

function statusConditions(s: Partial<StatusRecord> | undefined): string[] {
  return s?.conditions ?? [];
}

export interface PsCommandOptions extends GlobalOptions {
  /** only this VM's row; it may be a `tend run` VM (see loadContext) */
  name?: string;
}

export async function psCommand(o: PsCommandOptions): Promise<PsResult> {
  const ctx = await loadContext({ ...o, fromState: true }, o.name);
  const backend = await backendFor(ctx);
  const observed = await backend.observe(ctx.project, o.signal);
  const entries = new Map(plan(ctx.project, observed, { recreate: false, prune: false }).map((e) => [e.vm, e]));
  const names = [
    ...ctx.project.vms.map((v) => v.name),
    ...Object.keys(observed.vms)
      .filter((n) => !ctx.project.vms.some((v) => v.name === n))
      .sort(),
  ];
  const rows: PsRow[] = [];
  for (const name of names) {
    if (o.name !== undefined && name !== o.name) continue;
    const spec = ctx.project.vms.find((v) => v.name === name);
    const obs = observed.vms[name];
    const up = obs !== undefined && alive(obs.power);
    // a verdict recorded before the running process started is about an earlier run: ignore it
    const recorded = await readStatus(ctx.projDir, name);
    const status = up && recorded && (recorded.at ?? 0) >= (obs.startedAt ?? Infinity) ? recorded : undefined;
    // Ready only as observed: readiness recorded for this very process (a verdict of a wait that
    // failed, or was killed, since is not Ready)
    const observedReady = up && obs.power === 'running' && obs.ready === true;
    const recordedConditions = statusConditions(status).filter((c) => observedReady || (c !== 'Ready' && c !== 'Healthy'));
    const conditions = [...new Set([...recordedConditions, ...planConditions(entries.get(name), obs)])];
    const state = !spec ? 'orphan' : !obs || !obs.exists ? 'not-created' : obs.power;
    rows.push({
      name,
      state,
      ready: observedReady && (status === undefined || status.state === 'Ready'),
      accel: up ? obs.accel : null,
      cpus: spec?.cpus ?? obs?.applied?.cpus ?? null,
      memory: spec?.memory ?? obs?.applied?.memory ?? null,
      ports: up ? Object.fromEntries(Object.entries(obs.ports).filter(([k]) => k !== 'ssh')) : {},
      ssh: !up
        ? null
        : obs.sshPort
          ? `127.0.0.1:${obs.sshPort}`
          : spec?.network.mode === 'tap'
            ? await tapSshAddress(ctx.stateRoot, ctx.project, spec, ctx.env)
            : null,
      pid: up ? obs.pid : null,
      startedAt: up ? obs.startedAt : null,
      conditions,
      declared: Boolean(spec),
    });
  }
  return { project: ctx.project.name, vms: rows };
}

export function renderPs(r: PsResult, now: number = Date.now()): string {
  const rows = r.vms.map((v) => [
    v.name,
    v.state,
    v.ready ? 'yes' : 'no',
    v.accel ?? '-',
    v.cpus === null ? '-' : String(v.cpus),
    v.memory === null ? '-' : formatMemory(v.memory),
    Object.entries(v.ports)
      .map(([g, h]) => `${h}->${g}`)
      .join(',') || '-',
    v.ssh ?? '-',
    v.startedAt ? formatDuration(now - v.startedAt) : '-',
    v.conditions.join(',') || '-',
  ]);
  return table(['NAME', 'STATE', 'READY', 'ACCEL', 'CPUS', 'MEMORY', 'PORTS', 'SSH', 'AGE', 'CONDITIONS'], rows);
}

export const command: CliCommand = {
  name: 'ps',
  aliases: ['list'],
  description: 'list the VMs: state, readiness, accelerator, ports, SSH, age, conditions',
  examples: ['tend ps', 'tend ps --json', 'tend ps debian-12-3f2a'],
  configure: (c) => c.argument('[name]', 'only this VM (also a `tend run` VM)'),
  async run({ g, args, io }) {
    const name = args[0] as string | undefined;
    const r = await psCommand({ ...g, ...(name ? { name } : {}) });
    if (g.json) io.json(r);
    else io.out(renderPs(r));
    return EXIT.ok;
  },
};
