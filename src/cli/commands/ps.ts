/**
 * `tend ps`: one row per VM (declared ones, then orphans), all from observation now: power state,
 * accelerator, ports, age; READY and conditions from the controller's status record when there
 * is one, plus what the plan says (RecreateRequired, Orphan, StopIntent). `tend ps NAME` shows
 * only that VM's row (a `tend run` VM's too).
 */
import { plan } from '../../../controllers/plan.js';
import { EXIT } from '../../../schemas/errors.js';
import { alive } from '../../../schemas/ports.js';
import { observedReadiness } from '../readiness.js';
import type { CliCommand } from '../command.js';
import { INSTANCE_FLAG, withInstance } from '../name-flag.js';
import { planConditions } from '../conditions.js';
import { tapSshAddress } from '../../ssh/target.js';
import { readBackendRecord } from '../../backend/record.js';
import { hostLabel, localPid } from '../../backend/host-label.js';
import { backendFor, loadContext, type GlobalOptions } from '../context.js';
import { formatDuration, formatMemory, table } from '../output.js';
import { outputFormat, outputOptions, printResult, rfc3339 } from '../output-format.js';

export interface PsRow {
  name: string;
  /** where it runs: `local`, or the remote libvirt host (src/backend/host-label.ts) */
  host: string;
  /** running, paused, stopped, saved (stopped with its memory saved), unknown, not-created, orphan */
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

export interface PsCommandOptions extends GlobalOptions {
  /** only this VM's row; it may be a `tend run` VM (see loadContext) */
  name?: string;
  /** `-i NAME`: only the named instances NAME (of `name` when given) */
  instance?: string;
}

export async function psCommand(o: PsCommandOptions): Promise<PsResult> {
  const only = o.name !== undefined ? withInstance(o.name, o.instance) : undefined;
  const ctx = await loadContext({ ...o, fromState: true }, only);
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
    if (only !== undefined && name !== only) continue;
    if (o.instance !== undefined && ctx.instances[name]?.instance !== o.instance) continue;
    const spec = ctx.project.vms.find((v) => v.name === name);
    const obs = observed.vms[name];
    const up = obs !== undefined && alive(obs.power);
    const { ready, conditions: recordedConditions } = obs
      ? await observedReadiness(ctx.projDir, name, obs)
      : { ready: false, conditions: [] };
    const conditions = [...new Set([...recordedConditions, ...planConditions(entries.get(name), obs)])];
    // saved: stopped with its memory saved (stop --save); the next start restores it
    const state = !spec ? 'orphan' : !obs || !obs.exists ? 'not-created' : obs.power === 'stopped' && obs.saved ? 'saved' : obs.power;
    // the backend that holds it; a VM not created yet: where its file sends it
    const rec = (await readBackendRecord(ctx.projDir, name)) ?? (spec?.connect ? { backend: 'libvirt' as const, uri: spec.connect } : null);
    rows.push({
      name,
      host: hostLabel(rec),
      state,
      ready,
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
      pid: up ? localPid(rec, obs.pid) : null,
      startedAt: up ? obs.startedAt : null,
      conditions,
      declared: Boolean(spec),
    });
  }
  return { project: ctx.project.name, vms: rows };
}

/** A row as `--json` / `-o yaml` print it: timestamps in RFC 3339, memory with its unit in the name. */
export function psJson(r: PsResult): unknown {
  return {
    project: r.project,
    vms: r.vms.map((v) => ({ ...v, memoryMiB: v.memory, startedAt: rfc3339(v.startedAt) })),
  };
}

const portsText = (v: PsRow): string =>
  Object.entries(v.ports)
    .map(([g, h]) => `${h}->${g}`)
    .join(',') || '-';

export function renderPs(r: PsResult, now: number = Date.now(), wide = false): string {
  const rows = r.vms.map((v) => [
    v.name,
    v.state,
    v.ready ? 'yes' : 'no',
    v.accel ?? '-',
    v.cpus === null ? '-' : String(v.cpus),
    v.memory === null ? '-' : formatMemory(v.memory),
    portsText(v),
    v.ssh ?? '-',
    v.startedAt ? formatDuration(now - v.startedAt) : '-',
    ...(wide ? [v.pid === null ? '-' : String(v.pid), rfc3339(v.startedAt) ?? '-'] : []),
    v.conditions.join(',') || '-',
    v.host,
  ]);
  const wideHeads = wide ? ['PID', 'STARTED'] : [];
  return table(['NAME', 'STATE', 'READY', 'ACCEL', 'CPUS', 'MEMORY', 'PORTS', 'SSH', 'AGE', ...wideHeads, 'CONDITIONS', 'HOST'], rows);
}

export const command: CliCommand = {
  name: 'ps',
  aliases: ['list'],
  description: "list this project's VMs (every state): readiness, accelerator, ports, SSH, age, conditions; -a: every project",
  examples: ['tend ps', 'tend ps -o wide', 'tend ps --json', 'tend ps -q', 'tend ps -a', 'tend -p ~/src/shop ps', 'tend ps debian-12-3f2a'],
  configure: (c) =>
    outputOptions(
      c
        .argument('[name]', 'only this VM (also a `tend run` VM)')
        .option('-a, --all', 'every VM tend manages on this host, in every project, stopped ones too (same as `tend ls`)')
        .option(INSTANCE_FLAG, 'only the named instances NAME (ov -i): <vm>-NAME'),
    ),
  async run(inv) {
    const { g, args, io, opts } = inv;
    const name = args[0] as string | undefined;
    if (opts.all === true) {
      const { printLs } = await import('./ls.js');
      return printLs(inv, name);
    }
    const format = outputFormat(g, opts);
    const inst = (opts as { instance?: string }).instance;
    const r = await psCommand({ ...g, ...(name ? { name } : {}), ...(inst !== undefined ? { instance: inst } : {}) });
    await printResult(io, format, {
      data: psJson(r),
      table: () => renderPs(r),
      wide: () => renderPs(r, Date.now(), true),
      names: () => r.vms.map((v) => v.name),
    });
    return EXIT.ok;
  },
};
