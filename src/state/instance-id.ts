/** The VM's instance-id (its cloud-init identity, new with every new disk), '' when none is recorded. */
import { readFile } from 'node:fs/promises';
import { vmFile } from './paths.js';

export async function readInstanceId(projDir: string, vm: string): Promise<string> {
  return (await readFile(vmFile(projDir, vm, 'instanceId'), 'utf8').catch(() => '')).trim();
}
