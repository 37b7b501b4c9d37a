/**
 * `tend logs NAME [--console | --provision] [-n N] [-f]`: a VM's log, like `docker logs`.
 *   (default)     the VM's events (from the project's events.jsonl)
 *   --console     the serial console output (console.log, written by QEMU, boot messages too)
 *   --provision   the provisioning output (provision.log)
 * -n N shows the last N lines; -f keeps following the file as it grows until interrupted.
 */
import { open, stat } from 'node:fs/promises';
import type { TendEvent } from '../../../schemas/ports.js';
import { NotFoundError, UsageError } from '../../../schemas/errors.js';
import { eventsPath } from '../../state/events.js';
import { vmFile } from '../../state/paths.js';
import { loadContext, type GlobalOptions } from '../context.js';
import { inferVm } from './ssh.js';

export type LogSource = 'events' | 'console' | 'provision';

export interface FollowOptions {
  /** only the last N lines of what is there now (undefined: all) */
  lines?: number;
  follow?: boolean;
  signal?: AbortSignal;
  /** how often to look for growth while following (default 250 ms) */
  pollMs?: number;
  /** whole lines, without their newline */
  onLine: (line: string) => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    const { bytesRead } = await fh.read(buf, 0, buf.length, from);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export interface FollowNewOptions {
  signal?: AbortSignal;
  /** how often to look for growth (default 250 ms) */
  pollMs?: number;
  /** whole lines, without their newline */
  onLine: (line: string) => void;
}

/**
 * Emits the lines appended to `path` after byte `offset`, until `signal` aborts. A file that is
 * truncated or replaced by a shorter one is read again from its start; a missing one is waited for.
 */
export async function followNew(path: string, offset: number, o: FollowNewOptions): Promise<void> {
  let partial = '';
  while (await sleep(o.pollMs ?? 250, o.signal)) {
    const size = await sizeOf(path);
    if (size === null) continue;
    if (size < offset) {
      offset = 0;
      partial = '';
    }
    if (size > offset) {
      const parts = (partial + (await readRange(path, offset, size)).toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) o.onLine(stripCr(l));
      offset = size;
    }
  }
  if (partial) o.onLine(stripCr(partial));
}

function stripCr(l: string): string {
  return l.endsWith('\r') ? l.slice(0, -1) : l;
}

/**
 * Emits the file's lines (the last `lines` of them), then, with `follow`, new lines as they are
 * appended, until `signal` aborts. Resolves false when the file does not exist and `follow` is off.
 */
export async function followFile(path: string, o: FollowOptions): Promise<boolean> {
  const size = await sizeOf(path);
  if (size === null && !o.follow) return false;
  if (size !== null && size > 0) {
    const text = (await readRange(path, 0, size)).toString('utf8');
    const parts = text.split('\n');
    if (parts[parts.length - 1] === '') parts.pop();
    const shown = o.lines !== undefined ? parts.slice(Math.max(0, parts.length - o.lines)) : parts;
    for (const l of shown) o.onLine(stripCr(l));
  }
  if (o.follow)
    await followNew(path, size ?? 0, {
      onLine: o.onLine,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    });
  return true;
}

export interface LogsCommandOptions extends GlobalOptions {
  name?: string;
  source?: LogSource;
  lines?: number;
  follow?: boolean;
  /** receives each line (without newline) */
  write: (line: string) => void;
  pollMs?: number;
}

export interface LogsResult {
  vm: string;
  source: LogSource;
  path: string;
  /** the log exists (false: nothing was written yet) */
  found: boolean;
}

/** Parses an events.jsonl line; null for a torn or foreign line. */
export function parseEventLine(line: string): TendEvent | null {
  if (!line.trim()) return null;
  try {
    const e = JSON.parse(line) as TendEvent;
    return typeof e === 'object' && e !== null && typeof e.reason === 'string' && typeof e.time === 'string' ? e : null;
  } catch {
    return null;
  }
}

export async function logsCommand(o: LogsCommandOptions): Promise<LogsResult> {
  if (o.lines !== undefined && (!Number.isInteger(o.lines) || o.lines < 0))
    throw new UsageError(`-n wants a number of lines, got ${o.lines}`, 'BadLines');
  const ctx = await loadContext(o, o.name);
  const vm = inferVm(ctx.project, o.name, 'logs');
  const source = o.source ?? 'events';
  const path =
    source === 'events' ? eventsPath(ctx.projDir) : vmFile(ctx.projDir, vm, source === 'console' ? 'consoleLog' : 'provisionLog');
  const common = { follow: o.follow ?? false, ...(o.signal ? { signal: o.signal } : {}), ...(o.pollMs ? { pollMs: o.pollMs } : {}) };
  let found = true;
  if (source === 'events') {
    const { eventsCommand, renderEventLine } = await import('./events.js');
    const show = (e: TendEvent): void => o.write(o.json ? JSON.stringify(e) : renderEventLine(e));
    const follow = o.follow ?? false;
    // ctx.opts, not o: for a `tend run` VM found by name they carry its project file
    const r = await eventsCommand({
      ...ctx.opts,
      vm,
      ...(o.lines !== undefined ? { tail: o.lines } : {}),
      follow,
      onEvent: show,
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    });
    // following already showed them as they were read
    if (!follow) for (const e of r.events) show(e);
  } else {
    found = await followFile(path, { ...common, ...(o.lines !== undefined ? { lines: o.lines } : {}), onLine: o.write });
  }
  if (!found && source !== 'events') {
    throw new NotFoundError(
      'NoLog',
      source === 'provision'
        ? `${vm} has no provisioning log yet (${path}): nothing was provisioned`
        : `${vm} has no console log yet (${path}): it was never started`,
    );
  }
  return { vm, source, path, found };
}

/** Global options of the CLI that take a value (they may come before the command name). */
const GLOBAL_WITH_VALUE = new Set(['-f', '--file', '--state-dir', '--lock-timeout']);

/**
 * `-f` is the global `--file` everywhere, except after `logs` and `events`, where users type it
 * for `--follow` (docker, kubectl, tail). The parser lets global options win anywhere on the
 * line, so the entry rewrites that one `-f` before parsing. Nothing after `--` is touched.
 */
export function rewriteFollowFlag(argv: readonly string[], commands: readonly string[] = ['logs', 'events']): string[] {
  const out = [...argv];
  let inCommand = false;
  for (let i = 2; i < out.length; i++) {
    const a = out[i];
    if (a === '--') break;
    if (!inCommand) {
      if (GLOBAL_WITH_VALUE.has(a)) {
        i++;
        continue;
      }
      if (a.startsWith('-')) continue;
      if (!commands.includes(a)) break;
      inCommand = true;
      continue;
    }
    if (a === '-f') out[i] = '--follow';
  }
  return out;
}
