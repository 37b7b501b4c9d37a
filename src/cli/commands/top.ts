/**
 * `tend top` (alias `stats`): CPU, memory, disk and network per running VM of the project. CPU
 * and memory come from procfs of the VM's QEMU process (/proc/<pid>/stat, status), sampled
 * `--interval` apart; disk is the space its overlay (and named volumes are not) takes on the host;
 * network: QEMU's user-mode network keeps no counters it reports over QMP, so NET is shown only
 * for a VM on a TAP device (the host interface's counters) and "-" otherwise. Redrawn on a
 * terminal until Ctrl-C; piped or with --json, printed once.
 */
import { readFile, stat } from 'node:fs/promises';
import { EXIT } from '../../../schemas/errors.js';
import { alive } from '../../../schemas/ports.js';
import type { CliCommand } from '../command.js';
import { backendFor, loadContext, type GlobalOptions } from '../context.js';
import { parseDuration, table } from '../output.js';
import { cpuPercent, sampleProcess } from '../../host/procfs.js';
import { vmFile } from '../../state/paths.js';
import { localPid } from '../../backend/host-label.js';
import { readBackendRecordSync } from '../../backend/record.js';

export interface TopRow {
  name: string;
  pid: number;
  /** percent of one CPU over the interval */
  cpuPercent: number;
  memoryBytes: number;
  /** bytes the VM's disk overlay occupies on the host */
  diskBytes: number | null;
  /** bytes received and sent on the VM's TAP device; null for user-mode networking */
  netRxBytes: number | null;
  netTxBytes: number | null;
}

export interface TopResult {
  project: string;
  /** RFC 3339 */
  at: string;
  intervalMs: number;
  vms: TopRow[];
}

export interface TopCommandOptions extends GlobalOptions {
  intervalMs?: number;
  name?: string;
}

async function tapCounters(tap: string | undefined): Promise<{ rx: number | null; tx: number | null }> {
  if (!tap) return { rx: null, tx: null };
  const read = (f: string): Promise<number | null> =>
    readFile(`/sys/class/net/${tap}/statistics/${f}`, 'utf8').then(
      (t) => Number(t.trim()),
      () => null,
    );
  const [rx, tx] = await Promise.all([read('rx_bytes'), read('tx_bytes')]);
  return { rx, tx };
}

/** The `ifname=` of a QEMU TAP netdev (`-netdev tap,id=...,ifname=tend0a1b,...`) in its argv. */
export function tapOf(argv: readonly string[] | undefined): string | undefined {
  for (const a of argv ?? []) {
    if (!a.startsWith('tap,')) continue;
    const m = /(?:^|,)ifname=([^,]+)/.exec(a);
    if (m) return m[1];
  }
  return undefined;
}

export async function topCommand(o: TopCommandOptions): Promise<TopResult> {
  const ctx = await loadContext({ ...o, fromState: true }, o.name);
  const backend = await backendFor(ctx);
  const observed = await backend.observe(ctx.project, o.signal);
  // processes of this machine only: a remote VM's "pid" is its domain id on that host
  const running = Object.values(observed.vms).filter(
    (v) =>
      alive(v.power) && localPid(readBackendRecordSync(ctx.projDir, v.name), v.pid) !== null && (o.name === undefined || v.name === o.name),
  );
  const intervalMs = o.intervalMs ?? 1000;
  const first = await Promise.all(running.map((v) => sampleProcess(v.pid as number)));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, intervalMs));
  const second = await Promise.all(running.map((v) => sampleProcess(v.pid as number)));
  const elapsed = Date.now() - t0;
  const rows: TopRow[] = [];
  for (const [i, v] of running.entries()) {
    const a = first[i];
    const b = second[i];
    if (!a || !b) continue; // exited meanwhile
    const disk = await stat(vmFile(ctx.projDir, v.name, 'disk')).then(
      (s) => s.blocks * 512,
      () => null,
    );
    let argv: string[] | undefined;
    try {
      argv = (await readFile(`/proc/${v.pid}/cmdline`, 'utf8')).split('\0');
    } catch {
      argv = undefined;
    }
    const net = await tapCounters(tapOf(argv));
    rows.push({
      name: v.name,
      pid: v.pid as number,
      cpuPercent: Math.round(cpuPercent(a, b, elapsed) * 10) / 10,
      memoryBytes: b.rssBytes,
      diskBytes: disk,
      netRxBytes: net.rx,
      netTxBytes: net.tx,
    });
  }
  return { project: ctx.project.name, at: new Date().toISOString(), intervalMs: elapsed, vms: rows };
}

/** bytes → "812MiB", "1.5GiB", "0B". */
export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 || v >= 10 ? Math.round(v) : v.toFixed(1)}${units[u]}`;
}

export function renderTop(r: TopResult): string {
  if (r.vms.length === 0) return `no running VMs in project ${r.project}`;
  return table(
    ['NAME', 'PID', 'CPU %', 'MEMORY', 'DISK', 'NET RX / TX'],
    r.vms.map((v) => [
      v.name,
      String(v.pid),
      v.cpuPercent.toFixed(1),
      formatBytes(v.memoryBytes),
      formatBytes(v.diskBytes),
      v.netRxBytes === null ? '-' : `${formatBytes(v.netRxBytes)} / ${formatBytes(v.netTxBytes)}`,
    ]),
  );
}

export const command: CliCommand = {
  name: 'top',
  aliases: ['stats'],
  description: 'CPU, memory, disk and network of the running VMs, refreshed on a terminal (--json: once)',
  examples: ['tend top', 'tend top web', 'tend top --json', 'tend stats --interval 5s'],
  configure: (c) =>
    c
      .argument('[name]', 'only this VM')
      .option('--interval <duration>', 'time between samples (CPU % is measured over it)', '2s')
      .option('--once', 'print one sample and exit (also when piped, or with --json)'),
  async run({ g, args, opts, io }) {
    const intervalMs = parseDuration(opts.interval as string, '--interval');
    const name = args[0] as string | undefined;
    const o = { ...g, intervalMs, ...(name ? { name } : {}) };
    const live = process.stdout.isTTY === true && !g.json && opts.once !== true;
    do {
      const r = await topCommand(o);
      if (g.json) io.json(r);
      else io.out((live ? '\x1b[H\x1b[2J' : '') + renderTop(r));
    } while (live && !g.signal?.aborted);
    return EXIT.ok;
  },
};
