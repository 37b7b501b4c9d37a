/**
 * status.json: each VM's last reconcile verdict, for `ps` and `status` (READY, conditions).
 * Display only: nothing decides from it, and `ps` trusts it only when it is newer than the
 * running process. This module is its only reader and writer.
 */
import { existsSync } from 'node:fs';
import { readJson, writeJsonAtomic } from './atomic.js';
import { vmDir, vmFile } from './paths.js';

export interface StatusRecord {
  state: string;
  conditions: string[];
  error?: string;
  /** ms since epoch when it was recorded; a verdict older than the running process is stale */
  at: number;
}

/** The verdict recorded for a VM, read loosely (fields that are not what they should be are left out). */
export async function readStatus(projDir: string, vm: string): Promise<Partial<StatusRecord> | undefined> {
  const raw = await readJson<Record<string, unknown>>(vmFile(projDir, vm, 'status'), () => undefined);
  if (!raw || typeof raw !== 'object') return undefined;
  return {
    ...(typeof raw.state === 'string' ? { state: raw.state } : {}),
    ...(Array.isArray(raw.conditions) ? { conditions: raw.conditions.filter((c): c is string => typeof c === 'string') } : {}),
    ...(typeof raw.error === 'string' ? { error: raw.error } : {}),
    ...(typeof raw.at === 'number' ? { at: raw.at } : {}),
  };
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
