/** Terminal output helpers: aligned tables, durations, sizes. Pure string functions. */
import { UsageError } from '../errors.js';

/** Left-aligned columns separated by three spaces; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : (cell ?? '').padEnd(widths[c]))).join('   ').trimEnd())
    .join('\n');
}

/** "45s", "3m", "2h5m", "4d" — the way `docker ps` and `kubectl get` show ages. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 && d < 7 ? `${d}d${h % 24}h` : `${d}d`;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse "5m", "30s", "1h30m", "250ms" or a plain number of seconds into milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched = re.lastIndex;
  }
  if (t.length === 0 || matched !== t.length) {
    throw new UsageError(`${what} "${text}" is not a duration: write e.g. 30s, 5m, 1h30m`, 'BadDuration');
  }
  return Math.round(total);
}

/** MiB → "512M", "2G", "1.5G". */
export function formatMemory(mib: number): string {
  if (mib < 1024) return `${mib}M`;
  const g = mib / 1024;
  return `${Number.isInteger(g) ? g : g.toFixed(1)}G`;
}
