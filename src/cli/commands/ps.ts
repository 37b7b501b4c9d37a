/**
 * `tend ps`: one row per VM (declared ones, then orphans), all from observation now: power state,
 * accelerator, ports, age; READY and conditions from the controller's status record when there
 * is one, plus what the plan says (RecreateRequired, Orphan, StopIntent). `tend ps NAME` shows
 * only that VM's row (a `tend run` VM's too).
 */
import { plan, type PlanEntry } from '../../../controllers/plan.js';
import type { ObservedVm } from '../../../schemas/ports.js';
import { tapSshAddress } from '../../ssh/target.js';
import { readJson } from '../../state/atomic.js';
import { vmFile } from '../../state/paths.js';
import { backendFor, loadContext, type Context, type GlobalOptions } from '../context.js';
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

/** The last reconcile verdict (status.json, written by the CLI's lifecycle commands); read loosely. */
interface StatusRecord {
  state?: string;
  conditions?: unknown[];
  at?: number;
}

export async function readStatus(ctx: Context, vm: string): Promise<StatusRecord | undefined> {
  return readJson<StatusRecord>(vmFile(ctx.projDir, vm, 'status'), () => undefined);
}

function statusConditions(s: StatusRecord | undefined): string[] {
  const out: string[] = [];
  for (const c of s?.conditions ?? []) if (typeof c === 'string') out.push(c);
  return out;
}

export function planConditions(e: PlanEntry | undefined, obs: ObservedVm | undefined): string[] {
  const out: string[] = [];
  if (e?.action === 'recreate-required') out.push('RecreateRequired');
  if (e?.action === 'orphan') out.push('Orphan');
  if (e && ['restart', 'reseed', 'recreate', 'create', 'start'].includes(e.action) && obs?.exists) out.push('OutOfSync');
  if (obs?.intent === 'stopped') out.push('StopIntent');
  if (obs && obs.corrupt.length > 0) out.push('StateRebuilt');
  return out;
}

export interface PsCommandOptions extends GlobalOptions {
  /** only this VM's row; it may be a `tend run` VM (see loadContext) */
  name?: string;
}

export async function psCommand(o: PsCommandOptions): Promise<PsResult> {
  const ctx = await loadContext(o, o.name);
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
    const alive = obs !== undefined && obs.power !== 'stopped';
    // a verdict recorded before the running process started is about an earlier run: ignore it
    const recorded = await readStatus(ctx, name);
    const status = alive && recorded && (recorded.at ?? 0) >= (obs.startedAt ?? Infinity) ? recorded : undefined;
    const conditions = [...new Set([...statusConditions(status), ...planConditions(entries.get(name), obs)])];
    const state = !spec ? 'orphan' : !obs || !obs.exists ? 'not-created' : obs.power;
    rows.push({
      name,
      state,
      ready: alive && obs.power === 'running' && (status?.state === 'Ready' || conditions.includes('Ready')),
      accel: alive ? obs.accel : null,
      cpus: spec?.cpus ?? obs?.applied?.cpus ?? null,
      memory: spec?.memory ?? obs?.applied?.memory ?? null,
      ports: alive ? Object.fromEntries(Object.entries(obs.ports).filter(([k]) => k !== 'ssh')) : {},
      ssh: !alive
        ? null
        : obs.sshPort
          ? `127.0.0.1:${obs.sshPort}`
          : spec?.network.mode === 'tap'
            ? await tapSshAddress(ctx.stateRoot, ctx.project, spec, ctx.env)
            : null,
      pid: alive ? obs.pid : null,
      startedAt: alive ? obs.startedAt : null,
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
