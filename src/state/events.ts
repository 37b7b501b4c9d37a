/**
 * The project's event log: one JSON object per line in events.jsonl (VmStarted, ProvisionStepFailed,
 * ...), appended as things happen and read back by `tend events`. Reading is defensive: a torn or
 * corrupt line is reported and skipped, never fatal.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TendEvent } from '../../schemas/ports.js';
import type { CorruptFile } from './atomic.js';
import { ensureDir, FILE_MODE, schemaErrors } from './atomic.js';
import { PROJECT_FILES } from './paths.js';
import { validateEvent } from './validators.generated.js';

/** One line of events.jsonl (TendEvent, schemas/ports.ts). */
export const eventSchema = {
  $id: 'tend:state/event',
  type: 'object',
  required: ['time', 'type', 'reason', 'message'],
  properties: {
    time: { type: 'string' },
    type: { enum: ['Normal', 'Warning'] },
    reason: { type: 'string' },
    vm: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

export function eventsPath(projDir: string): string {
  return join(projDir, PROJECT_FILES.events);
}

export async function appendEvent(projDir: string, event: TendEvent): Promise<void> {
  await ensureDir(projDir);
  await appendFile(eventsPath(projDir), JSON.stringify(event) + '\n', { mode: FILE_MODE });
}

export interface ReadEventsOptions {
  /** only this VM's events */
  vm?: string;
  /** only events at or after this time (ms since epoch) */
  sinceMs?: number;
  /** only the last N (after filtering) */
  limit?: number;
  onCorrupt?: (c: CorruptFile) => void;
}

export async function readEvents(projDir: string, opts: ReadEventsOptions = {}): Promise<TendEvent[]> {
  let text: string;
  try {
    text = await readFile(eventsPath(projDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: TendEvent[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let e: TendEvent;
    try {
      e = JSON.parse(line) as TendEvent;
    } catch (err) {
      opts.onCorrupt?.({ path: `${eventsPath(projDir)}:${i + 1}`, error: (err as Error).message });
      return;
    }
    if (!validateEvent(e)) {
      opts.onCorrupt?.({ path: `${eventsPath(projDir)}:${i + 1}`, error: `not an event: ${schemaErrors(validateEvent)}` });
      return;
    }
    if (opts.vm && e.vm !== opts.vm) return;
    if (opts.sinceMs !== undefined && Date.parse(e.time) < opts.sinceMs) return;
    out.push(e);
  });
  return opts.limit !== undefined ? out.slice(-opts.limit) : out;
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
