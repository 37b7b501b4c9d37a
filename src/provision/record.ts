/**
 * `provision.json`, the provisioning record: which chained step identities succeeded on which
 * disk. It names the disk it belongs to (the VM's instance-id, which changes only with a new disk),
 * so a new disk resets it. A step is recorded only after it succeeded. This module is the file's
 * only reader and writer.
 */
import { rm } from 'node:fs/promises';
import { readJson, writeJsonAtomic, type CorruptFile } from '../state/atomic.js';
import { validateProvisionRecord } from '../state/validators.generated.js';
import { vmFile } from '../state/paths.js';

export interface ProvisionRecord {
  /** instance-id of the disk these steps ran on */
  instanceId: string;
  /** chained step identities recorded as succeeded, in order */
  steps: string[];
}

export const provisionRecordSchema = {
  $id: 'tend:state/provision',
  type: 'object',
  required: ['instanceId', 'steps'],
  properties: { instanceId: { type: 'string' }, steps: { type: 'array', items: { type: 'string' } } },
} as const;

export const recordPath = (projDir: string, vm: string): string => vmFile(projDir, vm, 'provision');

/** The record as written, or null when there is none (or it is not a record). */
export async function readRecord(path: string): Promise<ProvisionRecord | null> {
  return (await readJson<ProvisionRecord>(path, validateProvisionRecord)) ?? null;
}

export function writeRecord(path: string, record: ProvisionRecord): Promise<void> {
  return writeJsonAtomic(path, record);
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
  const r = await readJson<ProvisionRecord>(recordPath(projDir, vm), validateProvisionRecord, onCorrupt);
  return r && r.instanceId === instanceId ? r.steps : [];
}

/** Forget every recorded step (a new disk). */
export async function clearRecord(projDir: string, vm: string): Promise<void> {
  await rm(recordPath(projDir, vm), { force: true });
}
