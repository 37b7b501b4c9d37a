/**
 * A process's CPU time and memory from procfs (/proc/<pid>/stat and /proc/<pid>/status), for
 * `tend top`. Null when the process is gone.
 */
import { readFile } from 'node:fs/promises';

export interface ProcSample {
  /** user + system CPU time, in clock ticks (USER_HZ, 100 on Linux) */
  cpuTicks: number;
  /** resident set size, bytes */
  rssBytes: number;
  /** threads */
  threads: number;
}

/** USER_HZ: the unit of /proc/<pid>/stat's times (100 on every Linux architecture tend runs on). */
export const CLOCK_TICKS_PER_SECOND = 100;

export function parseStat(text: string): { utime: number; stime: number; threads: number } | null {
  // the command name (field 2) may hold spaces and parentheses: fields are counted after the last ")"
  const end = text.lastIndexOf(')');
  if (end < 0) return null;
  const f = text
    .slice(end + 2)
    .trim()
    .split(/\s+/);
  // f[0] is field 3 (state): utime is field 14, stime 15, num_threads 20
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const threads = Number(f[17]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? { utime, stime, threads: Number.isFinite(threads) ? threads : 0 } : null;
}

export function parseRssBytes(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

export async function sampleProcess(pid: number): Promise<ProcSample | null> {
  try {
    const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    const s = parseStat(stat);
    if (!s) return null;
    return { cpuTicks: s.utime + s.stime, rssBytes: parseRssBytes(status) ?? 0, threads: s.threads };
  } catch {
    return null;
  }
}

/** CPU use between two samples taken `ms` apart, in percent of one CPU (200 = two CPUs busy). */
export function cpuPercent(a: ProcSample, b: ProcSample, ms: number): number {
  if (ms <= 0) return 0;
  return Math.max(0, ((b.cpuTicks - a.cpuTicks) / CLOCK_TICKS_PER_SECOND / (ms / 1000)) * 100);
}
