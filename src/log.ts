/**
 * The logger: pino. JSON lines when asked (--json) or when stderr is not a terminal (watch under
 * systemd, CI); short human lines on a terminal ("19:42:03 INFO  web: started (pid 4242)").
 * pino-pretty is not a dependency: the human formatter is the few lines below.
 */
import { pino, type Logger, type DestinationStream, type Level } from 'pino';
import type { Colors } from 'picocolors/types.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** force JSON lines (--json) */
  json?: boolean;
  /** debug level instead of info (-v) */
  verbose?: boolean;
  /** where lines go; default process.stderr */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** override TTY detection (tests) */
  tty?: boolean;
  /** human lines: WARN and ERROR in colour (src/cli/color.ts decides whether) */
  color?: Colors;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'vm', 'v']);

/** Format one pino JSON line for humans. Unparsable input is passed through unchanged. */
export function formatHumanLine(line: string, color?: Colors): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : line + '\n';
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toTimeString().slice(0, 8) : '--:--:--';
  const n = Number(rec.level);
  const name = (LEVEL_NAMES[n] ?? String(rec.level)).padEnd(5);
  const level = !color ? name : n >= 50 ? color.red(name) : n >= 40 ? color.yellow(name) : name;
  const vm = typeof rec.vm === 'string' ? `${rec.vm}: ` : '';
  const extras = Object.entries(rec)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  const err = rec.err as { message?: string } | undefined;
  const tail = extras.filter((e) => !e.startsWith('err=')).join(' ');
  return `${time} ${level} ${vm}${String(rec.msg ?? '')}${err?.message ? ` (${err.message})` : ''}${tail ? ' ' + tail : ''}\n`;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean((stream as { isTTY?: boolean }).isTTY);
  const level: Level = opts.verbose ? 'debug' : 'info';
  const base = { base: undefined, level };
  if (opts.json || !tty) return pino(base, stream as DestinationStream);
  const human: DestinationStream = { write: (line: string) => void stream.write(formatHumanLine(line, opts.color)) };
  return pino(base, human);
}
