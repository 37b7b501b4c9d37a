/**
 * `tend events`: what happened in this project (events.jsonl), oldest first. Read-only.
 * With `follow` (-f), events appended afterwards are passed to `onEvent` as they arrive, until
 * the signal aborts (Ctrl-C).
 */
import { stat } from 'node:fs/promises';
import type { TendEvent } from '../../../schemas/ports.js';
import { eventsPath, readEvents } from '../../state/events.js';
import { loadContext, type GlobalOptions } from '../context.js';
import { table } from '../output.js';
import { followNew, parseEventLine } from './logs.js';

export interface EventsCommandOptions extends GlobalOptions {
  vm?: string;
  /** only the last N */
  tail?: number;
  /** keep following: the events found, then new ones as they arrive, go to onEvent until `signal` aborts */
  follow?: boolean;
  onEvent?: (e: TendEvent) => void;
  /** how often to look for new events while following (default 250 ms) */
  pollMs?: number;
}

export interface EventsResult {
  project: string;
  events: TendEvent[];
  /** lines of events.jsonl that could not be read */
  corrupt: string[];
}

export async function eventsCommand(o: EventsCommandOptions): Promise<EventsResult> {
  const ctx = await loadContext(o);
  const corrupt: string[] = [];
  // the follower starts at the size seen before the backlog is read: nothing falls in between
  const start = await fileSize(eventsPath(ctx.projDir));
  const events = await readEvents(ctx.projDir, {
    ...(o.vm ? { vm: o.vm } : {}),
    ...(o.tail !== undefined ? { limit: o.tail } : {}),
    onCorrupt: (c) => corrupt.push(c.path),
  });
  if (o.follow) {
    for (const e of events) o.onEvent?.(e);
    await followNew(eventsPath(ctx.projDir), start, {
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
      onLine: (line) => {
        const e = parseEventLine(line);
        if (e && (!o.vm || e.vm === o.vm)) o.onEvent?.(e);
      },
    });
  }
  return { project: ctx.project.name, events, corrupt };
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

/** One event as a table row (same columns as renderEvents), for followed events. */
export function renderEventLine(e: TendEvent): string {
  return [e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), e.type, e.reason, e.vm ?? '-', e.message].join('   ');
}

export function renderEvents(r: EventsResult): string {
  if (r.events.length === 0) return `no events recorded for project ${r.project}`;
  return table(
    ['TIME', 'TYPE', 'REASON', 'VM', 'MESSAGE'],
    r.events.map((e) => [e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), e.type, e.reason, e.vm ?? '-', e.message]),
  );
}
