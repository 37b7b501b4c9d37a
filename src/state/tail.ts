/**
 * Reading files that grow: the last N lines, then what is appended, until a signal aborts (`tend
 * logs -f`, `tend events -f`). A file that is truncated or replaced by a shorter one is read again
 * from its start; a missing one is waited for.
 */
import { open, stat } from 'node:fs/promises';
import type { TendEvent } from '../../schemas/ports.js';
import type { CorruptFile } from './atomic.js';
import { eventsPath, parseEventLine, readEvents } from './events.js';

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

/** Emits the lines appended to `path` after byte `offset`, until `signal` aborts. */
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

export interface TailEventsOptions {
  /** only this VM's events */
  vm?: string;
  /** only the last N */
  tail?: number;
  /** keep following: the events found, then new ones as they arrive, go to onEvent until `signal` aborts */
  follow?: boolean;
  onEvent?: (e: TendEvent) => void;
  signal?: AbortSignal;
  /** how often to look for new events while following (default 250 ms) */
  pollMs?: number;
  onCorrupt?: (c: CorruptFile) => void;
}

/** The project's events (the last `tail`), oldest first; with `follow`, then new ones as they are appended. */
export async function tailEvents(projDir: string, o: TailEventsOptions): Promise<TendEvent[]> {
  const path = eventsPath(projDir);
  // the follower starts at the size seen before the backlog is read: nothing falls in between
  const start = (await sizeOf(path)) ?? 0;
  const events = await readEvents(projDir, {
    ...(o.vm ? { vm: o.vm } : {}),
    ...(o.tail !== undefined ? { limit: o.tail } : {}),
    ...(o.onCorrupt ? { onCorrupt: o.onCorrupt } : {}),
  });
  if (o.follow) {
    for (const e of events) o.onEvent?.(e);
    await followNew(path, start, {
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
      onLine: (line) => {
        const e = parseEventLine(line);
        if (e && (!o.vm || e.vm === o.vm)) o.onEvent?.(e);
      },
    });
  }
  return events;
}
