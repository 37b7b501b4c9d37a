/**
 * `tend events`: what happened in this project (events.jsonl), oldest first. Read-only.
 * With `follow` (-f), events appended afterwards are passed to `onEvent` as they arrive, until
 * the signal aborts (Ctrl-C).
 */
import type { TendEvent } from '../../../schemas/ports.js';
import { EXIT } from '../../../schemas/errors.js';
import { tailEvents } from '../../state/tail.js';
import type { CliCommand } from '../command.js';
import { loadContext, type GlobalOptions } from '../context.js';
import { eventTime, renderEventLine, table } from '../output.js';

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
  const events = await tailEvents(ctx.projDir, { ...o, onCorrupt: (c) => corrupt.push(c.path) });
  return { project: ctx.project.name, events, corrupt };
}

export function renderEvents(r: EventsResult): string {
  if (r.events.length === 0) return `no events recorded for project ${r.project}`;
  return table(
    ['TIME', 'TYPE', 'REASON', 'VM', 'MESSAGE'],
    r.events.map((e) => [eventTime(e), e.type, e.reason, e.vm ?? '-', e.message]),
  );
}

export const command: CliCommand = {
  name: 'events',
  description: 'what happened in this project (VmStarted, VmFailed, ...), oldest first',
  examples: ['tend events', 'tend events --vm web --tail 20', 'tend events --json', 'tend events -f'],
  configure: (c) =>
    c
      .option('--vm <name>', 'only this VM')
      .option('--tail <n>', 'only the last N events', (v: string) => Number.parseInt(v, 10))
      .option('-f, --follow', 'keep printing new events as they happen, until Ctrl-C (--json: one per line)'),
  async run({ g, opts, io }) {
    const o = opts as { vm?: string; tail?: number; follow?: boolean };
    const r = await eventsCommand({
      ...g,
      ...(o.vm ? { vm: o.vm } : {}),
      ...(o.tail !== undefined && Number.isFinite(o.tail) ? { tail: o.tail } : {}),
      ...(o.follow ? { follow: true, onEvent: (e: TendEvent) => io.out(g.json ? JSON.stringify(e) : renderEventLine(e)) } : {}),
    });
    if (o.follow) return EXIT.ok;
    if (g.json) io.json(r);
    else io.out(renderEvents(r));
    return EXIT.ok;
  },
};
