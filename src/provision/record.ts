/**
 * `provision.json`, the provisioning record: which chained step identities succeeded on which
 * disk. It names the disk it belongs to (the VM's instance-id, which changes only with a new disk),
 * so a new disk resets it. A step is recorded only after it succeeded.
 */
import { readJson, writeJsonAtomic } from '../state/atomic.js';
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
