/**
 * The VM's instance-id (its cloud-init identity, new with every new disk): made once when its disk
 * is made, kept for the disk's life. Read through a pattern like every state file: a damaged one
 * is reported and reads as none, so it is made again (cloud-init then treats the next boot as a
 * new instance, the honest outcome of a lost id).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CorruptFile } from './atomic.js';
import { vmFile } from './paths.js';

export const INSTANCE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function newInstanceId(): string {
  return `i-${randomBytes(8).toString('hex')}`;
}

/** The VM's instance-id; '' when none is recorded or (reported through onCorrupt) it is damaged. */
export async function readInstanceId(projDir: string, vm: string, onCorrupt?: (c: CorruptFile) => void): Promise<string> {
  const path = vmFile(projDir, vm, 'instanceId');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return '';
  }
  const id = text.trim();
  if (INSTANCE_ID_RE.test(id)) return id;
  onCorrupt?.({ path, error: 'not an instance-id' });
  return '';
}
