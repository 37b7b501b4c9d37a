/** Terminal output helpers: aligned tables, durations, sizes. Pure string functions. */
import { UsageError } from '../../schemas/errors.js';
import type { TendEvent } from '../../schemas/ports.js';
import { parseDuration as parseDurationSeconds } from '../../schemas/units.js';

/** Left-aligned columns separated by three spaces; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : (cell ?? '').padEnd(widths[c])))
        .join('   ')
        .trimEnd(),
    )
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

/**
 * Parse a command-line duration ("5m", "30s", "1h30m", "250ms", or a plain number of seconds) into
 * milliseconds, with the same grammar as durations in project files (src/load/common.ts).
 */
export function parseDuration(text: string, what = 'duration'): number {
  const seconds = parseDurationSeconds(text);
  if (seconds === null) throw new UsageError(`${what} "${text}" is not a duration: write e.g. 30s, 5m, 1h30m`, 'BadDuration');
  return Math.round(seconds * 1000);
}

/** MiB → "512MiB", "2GiB", "1.5GiB". */
export function formatMemory(mib: number): string {
  if (mib < 1024) return `${mib}MiB`;
  const g = mib / 1024;
  return `${Number.isInteger(g) ? g : g.toFixed(1)}GiB`;
}

/** One event as a table row (the columns of `tend events`), for followed events and `tend logs`. */
export function renderEventLine(e: TendEvent): string {
  return [eventTime(e), e.type, e.reason, e.vm ?? '-', e.message].join('   ');
}

/** "2026-01-02 03:04:05Z" */
export function eventTime(e: TendEvent): string {
  return e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
