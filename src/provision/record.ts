/**
 * `provision.json`, the provisioning record: which chained step identities succeeded on which
 * disk. It names the disk it belongs to (the VM's instance-id, which changes only with a new disk),
 * so a new disk resets it. A step is recorded only after it succeeded. This module is the file's
 * only reader and writer.
 */
import { rm } from 'node:fs/promises';
import { readJson, writeJsonAtomic, type CorruptFile } from '../state/atomic.js';
import { vmFile } from '../state/paths.js';

export interface ProvisionRecord {
  /** instance-id of the disk these steps ran on */
  instanceId: string;
  /** chained step identities recorded as succeeded, in order */
  steps: string[];
}

export const recordPath = (projDir: string, vm: string): string => vmFile(projDir, vm, 'provision');

/** The record as written, or null when there is none (or it is not a record). */
export async function readRecord(path: string): Promise<ProvisionRecord | null> {
  const r = await readJson<ProvisionRecord>(path);
  return r && typeof r.instanceId === 'string' && Array.isArray(r.steps) && r.steps.every((s) => typeof s === 'string') ? r : null;
}

export function writeRecord(path: string, record: ProvisionRecord): Promise<void> {
  return writeJsonAtomic(path, record);
}

/** The hashes in a record (an array, or an object with a `steps`/`hashes`/`done` array); null if none. */
function hashesOf(v: unknown): string[] | null {
  const pick = (x: unknown): string[] | null => (Array.isArray(x) && x.every((s) => typeof s === 'string') ? (x as string[]) : null);
  if (Array.isArray(v)) return pick(v);
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return pick(o.steps) ?? pick(o.hashes) ?? pick(o.done);
  }
  return null;
}

/**
 * The step hashes recorded as succeeded on the disk with `instanceId`, for observation: [] when
 * there is no record or it was made on another disk. A corrupt record is reported through
 * `onCorrupt` and reads as [].
 */
export async function recordedSteps(
  projDir: string,
  vm: string,
  instanceId: string | null,
  onCorrupt: (c: CorruptFile) => void,
): Promise<string[]> {
  const path = recordPath(projDir, vm);
  const raw = await readJson<unknown>(path, onCorrupt);
  if (raw === undefined) return [];
  const h = hashesOf(raw);
  if (!h) {
    onCorrupt({ path, error: 'no list of step hashes' });
    return [];
  }
  const recordedFor = (raw as { instanceId?: unknown } | null)?.instanceId;
  return typeof recordedFor !== 'string' || recordedFor === instanceId ? h : [];
}

/** Forget every recorded step (a new disk). */
export async function clearRecord(projDir: string, vm: string): Promise<void> {
  await rm(recordPath(projDir, vm), { force: true });
}
