/**
 * `tend ls` (also `tend ps --all`): every VM tend manages on this host, across projects, from
 * the state root's index of projects (src/state/project-record.ts) and observation now: power
 * state, readiness, ports, age, and which host runs it. Project files are not read (they may be
 * anywhere, or gone); each VM is shown with the spec it last ran with.
 */
import { existsSync } from 'node:fs';
import { EXIT } from '../../../schemas/errors.js';
import type { Project, VmSpec } from '../../../schemas/model.js';
import { alive, type Observed, type ObservedVm } from '../../../schemas/ports.js';
import type { CliCommand } from '../command.js';
import type { GlobalOptions } from '../context.js';
import { stateRootOf } from '../state-root.js';
import { hostLabel as hostOf, localPid } from '../../backend/host-label.js';
import { formatDuration, formatMemory, table } from '../output.js';
import { outputFormat, outputOptions, printResult, rfc3339 } from '../output-format.js';
import { listProjectFolders, type ProjectFolder } from '../../state/project-record.js';
import { readBackendRecordSync, type BackendRecord } from '../../backend/record.js';
import { observedReadiness } from '../readiness.js';
import { sharedQemuScan, type QemuScan } from '../../qemu/liveness.js';

export interface LsRow {
  /** where the VM runs: "local", or a remote libvirt host (src/backend/host-label.ts) */
  host: string;
  project: string;
  /** the project's directory; null when tend has no record of it (a folder made by an older tend) */
  path: string | null;
  /** false when that directory is gone (the VMs keep running) */
  pathExists: boolean;
  name: string;
  /** running, paused, stopped, unknown, not-created */
  state: string;
  ready: boolean;
  cpus: number | null;
  memoryMiB: number | null;
  /** guest "port/proto" -> host "addr:port" */
  ports: Record<string, string>;
  ssh: string | null;
  pid: number | null;
  /** RFC 3339; null when not running */
  startedAt: string | null;
  conditions: string[];
  /** the project's state folder */
  stateDir: string;
}

export interface LsResult {
  vms: LsRow[];
}

export interface LsCommandOptions extends GlobalOptions {
  /** only VMs of this name */
  name?: string;
}

/** The project as its state folder knows it: each VM's last applied spec. */
function projectOf(f: ProjectFolder, observed: Observed): Project {
  const vms = Object.values(observed.vms)
    .map((o) => o.applied)
    .filter((s): s is VmSpec => s !== null);
  return { name: f.name, dir: f.record?.dir ?? '', files: f.record?.files ?? [], vms, volumes: {} };
}

/** Libvirt-held VMs are observed through their connection (loaded only when a project has some). */
async function observeLibvirt(root: string, env: NodeJS.ProcessEnv, project: Project, signal?: AbortSignal): Promise<Observed> {
  const [{ createQemuBackend }, { createDispatcher }, { createLibvirtBackend }] = await Promise.all([
    import('../../qemu/backend.js'),
    import('../../backend/dispatch.js'),
    import('../../libvirt/backend.js'),
  ]);
  const d = createDispatcher({
    stateRoot: root,
    env,
    qemu: createQemuBackend({ stateRoot: root, env }),
    libvirt: (uri) => createLibvirtBackend({ stateRoot: root, env, uri }),
  });
  try {
    return await d.observe(project, signal);
  } finally {
    d.close();
  }
}

async function rowsOf(f: ProjectFolder, root: string, env: NodeJS.ProcessEnv, scan: QemuScan, signal?: AbortSignal): Promise<LsRow[]> {
  const { observeProject } = await import('../../qemu/observe.js');
  let observed = await observeProject(f.projDir, env, scan);
  const records: Record<string, BackendRecord | null> = {};
  for (const n of Object.keys(observed.vms)) records[n] = readBackendRecordSync(f.projDir, n);
  const onLibvirt = Object.keys(observed.vms).filter((n) => records[n]?.backend === 'libvirt');
  if (onLibvirt.length > 0) {
    if (f.record) {
      const lv = await observeLibvirt(root, env, projectOf(f, observed), signal).catch(() => null);
      observed = { vms: { ...observed.vms, ...(lv ? Object.fromEntries(onLibvirt.map((n) => [n, lv.vms[n]]).filter(([, o]) => o)) : {}) } };
      if (!lv) for (const n of onLibvirt) observed.vms[n] = { ...observed.vms[n], power: 'unknown' };
    } else {
      // no record: the project's directory (and so its libvirt domain names) is unknown
      for (const n of onLibvirt) observed.vms[n] = { ...observed.vms[n], power: 'unknown' };
    }
  }
  const path = f.record?.dir ?? null;
  const pathExists = path !== null && existsSync(path);
  return Promise.all(
    Object.values(observed.vms).map(async (obs: ObservedVm): Promise<LsRow> => {
      const up = alive(obs.power);
      const { ready, conditions } = await observedReadiness(f.projDir, obs.name, obs);
      return {
        host: hostOf(records[obs.name] ?? null),
        project: f.name,
        path,
        pathExists,
        name: obs.name,
        state: !obs.exists ? 'not-created' : obs.power,
        ready,
        cpus: obs.applied?.cpus ?? null,
        memoryMiB: obs.applied?.memory ?? null,
        ports: up ? Object.fromEntries(Object.entries(obs.ports).filter(([k]) => k !== 'ssh')) : {},
        ssh: up && obs.sshPort ? `127.0.0.1:${obs.sshPort}` : null,
        pid: up ? localPid(records[obs.name], obs.pid) : null,
        startedAt: up ? rfc3339(obs.startedAt) : null,
        conditions: [...conditions, ...(obs.intent === 'stopped' ? ['StopIntent'] : [])],
        stateDir: f.projDir,
      };
    }),
  );
}

export async function lsCommand(o: LsCommandOptions = {}): Promise<LsResult> {
  const root = stateRootOf(o);
  const env = o.env ?? process.env;
  const folders = listProjectFolders(root);
  const scan = sharedQemuScan();
  const all = (await Promise.all(folders.map((f) => rowsOf(f, root, env, scan, o.signal)))).flat();
  return { vms: all.filter((r) => o.name === undefined || r.name === o.name) };
}

const portsText = (r: LsRow): string =>
  Object.entries(r.ports)
    .map(([g, h]) => `${h}->${g}`)
    .join(',') || '-';

const pathText = (r: LsRow): string => (r.path === null ? '(unknown)' : r.pathExists ? r.path : `${r.path} (gone)`);

export function renderLs(r: LsResult, now: number = Date.now(), wide = false): string {
  if (r.vms.length === 0) return 'no VMs: tend manages none on this host (yet) under this state dir';
  const age = (v: LsRow): string => (v.startedAt ? formatDuration(now - Date.parse(v.startedAt)) : '-');
  if (!wide) {
    const rows = r.vms.map((v) => [v.host, v.project, v.name, v.state, v.ready ? 'yes' : 'no', portsText(v), age(v), pathText(v)]);
    return table(['HOST', 'PROJECT', 'NAME', 'STATE', 'READY', 'PORTS', 'AGE', 'PATH'], rows);
  }
  const rows = r.vms.map((v) => [
    v.host,
    v.project,
    v.name,
    v.state,
    v.ready ? 'yes' : 'no',
    v.cpus === null ? '-' : String(v.cpus),
    v.memoryMiB === null ? '-' : formatMemory(v.memoryMiB),
    portsText(v),
    v.ssh ?? '-',
    v.pid === null ? '-' : String(v.pid),
    v.startedAt ?? '-',
    v.conditions.join(',') || '-',
    pathText(v),
  ]);
  return table(
    ['HOST', 'PROJECT', 'NAME', 'STATE', 'READY', 'CPUS', 'MEMORY', 'PORTS', 'SSH', 'PID', 'STARTED', 'CONDITIONS', 'PATH'],
    rows,
  );
}

/** Print `tend ls` in the asked format (shared with `tend ps --all`). */
export async function printLs(inv: Parameters<NonNullable<CliCommand['run']>>[0], name?: string): Promise<number> {
  const { g, opts, io } = inv;
  const format = outputFormat(g, opts);
  const r = await lsCommand({ ...g, ...(name ? { name } : {}) });
  await printResult(io, format, {
    data: r,
    table: () => renderLs(r),
    wide: () => renderLs(r, Date.now(), true),
    names: () => r.vms.map((v) => `${v.project}/${v.name}`),
  });
  return EXIT.ok;
}

export const command: CliCommand = {
  name: 'ls',
  description: 'every VM tend manages on this host, in every project: host, project, state, ready, ports, age, path',
  examples: ['tend ls', 'tend ls -o wide', 'tend ls --json', 'tend ls -q'],
  configure: (c) => outputOptions(c.argument('[name]', 'only VMs of this name')),
  run: (inv) => printLs(inv, inv.args[0] as string | undefined),
};
