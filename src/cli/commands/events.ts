/** `tend events`: what happened in this project (events.jsonl), oldest first. Read-only. */
import type { TendEvent } from '../../../controllers/types.js';
import { readEvents } from '../../state/events.js';
import { loadContext, type GlobalOptions } from '../context.js';
import { table } from '../output.js';

export interface EventsCommandOptions extends GlobalOptions {
  vm?: string;
  /** only the last N */
  tail?: number;
}

export interface EventsResult {
  project: string;
  events: TendEvent[];
  /** lines of events.jsonl that could not be read */
  corrupt: string[];
}

export async function eventsCommand(o: EventsCommandOptions): Promise<EventsResult> {
  const ctx = loadContext(o);
  const corrupt: string[] = [];
  const events = await readEvents(ctx.projDir, {
    ...(o.vm ? { vm: o.vm } : {}),
    ...(o.tail !== undefined ? { limit: o.tail } : {}),
    onCorrupt: (c) => corrupt.push(c.path),
  });
  return { project: ctx.project.name, events, corrupt };
}

export function renderEvents(r: EventsResult): string {
  if (r.events.length === 0) return `no events recorded for project ${r.project}`;
  return table(
    ['TIME', 'TYPE', 'REASON', 'VM', 'MESSAGE'],
    r.events.map((e) => [e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), e.type, e.reason, e.vm ?? '-', e.message]),
  );
}
