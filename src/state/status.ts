/**
 * status.json: each VM's last reconcile verdict, for `ps` and `status` (READY, conditions).
 * Display only: nothing decides from it, and `ps` trusts it only when it is newer than the
 * running process. This module is its only reader and writer.
 */
import { existsSync } from 'node:fs';
import { readJson, writeJsonAtomic, type CorruptFile } from './atomic.js';
import { validateStatusRecord } from './validators.generated.js';
import { vmDir, vmFile } from './paths.js';

export interface StatusRecord {
  state: string;
  conditions: string[];
  error?: string;
  /** ms since epoch when it was recorded; a verdict older than the running process is stale */
  at: number;
}

export const statusRecordSchema = {
  $id: 'tend:state/status',
  type: 'object',
  required: ['state', 'conditions', 'at'],
  properties: {
    state: { type: 'string' },
    conditions: { type: 'array', items: { type: 'string' } },
    error: { type: 'string' },
    at: { type: 'number' },
  },
} as const;

/** The verdict recorded for a VM; a damaged one reads as none, told to `onCorrupt` (observe lists it). */
export async function readStatus(projDir: string, vm: string, onCorrupt?: (c: CorruptFile) => void): Promise<StatusRecord | undefined> {
  return readJson<StatusRecord>(vmFile(projDir, vm, 'status'), validateStatusRecord, onCorrupt);
}

/**
 * Record each VM's verdict. Destroyed and blocked VMs get none, nor does a VM that failed before
 * it had a folder (a folder would make it look known). `onError` hears a write that failed.
 */
export async function recordStatus(
  projDir: string,
  vms: Record<string, { state: string; error?: string; conditions: string[] }>,
  now: number,
  onError: (vm: string, err: unknown) => void,
): Promise<void> {
  await Promise.all(
    Object.entries(vms)
      .filter(
        ([vm, s]) =>
          s.state !== 'Destroyed' &&
          s.state !== 'Blocked' &&
          (s.state === 'Ready' || s.state === 'Running' || existsSync(vmDir(projDir, vm))),
      )
      .map(([vm, s]) => {
        const rec: StatusRecord = { state: s.state, conditions: s.conditions, ...(s.error ? { error: s.error } : {}), at: now };
        return writeJsonAtomic(vmFile(projDir, vm, 'status'), rec).catch((err: unknown) => onError(vm, err));
      }),
  );
}
