/**
 * `instances.json` in a project's state folder: the named instances `tend up -i NAME` created
 * (declared VM → instance names), expanded into the project on every load (src/load/instances.ts)
 * until `tend down --destroy` or `tend destroy` deletes them. Read defensively: a corrupt file is
 * reported by the caller's onCorrupt and read as no instances (their folders stay, as orphans).
 */
import { readJsonSync, writeJsonAtomic, type CorruptFile } from './atomic.js';
import { PROJECT_FILES, vmDir } from './paths.js';
import { join } from 'node:path';
import { validateInstancesRecord } from './validators.generated.js';
import { rm } from 'node:fs/promises';
import { instanceVmName, removeInstances, type InstanceMap } from '../load/instances.js';

export { instancesRecordSchema } from './instances-schema.js';

export function instancesFile(projDir: string): string {
  return join(projDir, PROJECT_FILES.instances);
}

export function readInstances(projDir: string, onCorrupt?: (c: CorruptFile) => void): InstanceMap {
  return readJsonSync<InstanceMap>(instancesFile(projDir), validateInstancesRecord, onCorrupt) ?? {};
}

export async function writeInstances(projDir: string, m: InstanceMap): Promise<void> {
  if (JSON.stringify(readInstances(projDir, () => undefined)) === JSON.stringify(m)) return;
  await writeJsonAtomic(instancesFile(projDir), m);
}

/**
 * After a destroy: drop the instances among `vms` (VM names) from the record, and what is left of
 * their folders (the stop intent `down` records: nothing will bring a forgotten instance back, so
 * nothing needs to keep it down). Other names are ignored.
 */
export async function forgetInstances(projDir: string, vms: readonly string[]): Promise<void> {
  const now = readInstances(projDir, () => undefined);
  const next = removeInstances(now, vms);
  if (JSON.stringify(next) === JSON.stringify(now)) return;
  await writeJsonAtomic(instancesFile(projDir), next);
  const kept = new Set(Object.entries(next).flatMap(([vm, list]) => list.map((i) => instanceVmName(vm, i))));
  for (const [vm, list] of Object.entries(now))
    for (const i of list) {
      const name = instanceVmName(vm, i);
      if (!kept.has(name)) await rm(vmDir(projDir, name), { recursive: true, force: true });
    }
}
