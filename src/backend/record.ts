/**
 * Which backend holds a VM: `backend.json` in the VM's state folder, written when a backend
 * prepares it. The per-VM dispatcher (src/backend/dispatch.ts) routes commands that name only a
 * VM (stop, destroy, ...) and orphans by it. No record: the QEMU backend (folders made before
 * backends were selectable).
 */
import { readJson, readJsonSync, writeJsonAtomic } from '../state/atomic.js';
import { validateBackendRecord } from '../state/validators.generated.js';
export { backendRecordSchema } from './record-schema.js';
import { vmFile } from '../state/paths.js';

export interface BackendRecord {
  backend: 'qemu' | 'libvirt';
  /** libvirt connection URI (libvirt only) */
  uri?: string;
  /** libvirt domain name (libvirt only) */
  domain?: string;
}

function valid(r: BackendRecord | undefined): BackendRecord | null {
  return r && typeof r === 'object' && (r.backend === 'qemu' || r.backend === 'libvirt') ? r : null;
}

export async function readBackendRecord(projDir: string, vm: string): Promise<BackendRecord | null> {
  return valid(await readJson<BackendRecord>(vmFile(projDir, vm, 'backend'), validateBackendRecord, () => undefined));
}

export function readBackendRecordSync(projDir: string, vm: string): BackendRecord | null {
  return valid(readJsonSync<BackendRecord>(vmFile(projDir, vm, 'backend'), validateBackendRecord, () => undefined));
}

export async function writeBackendRecord(projDir: string, vm: string, r: BackendRecord): Promise<void> {
  const prev = await readBackendRecord(projDir, vm);
  if (prev && JSON.stringify(prev) === JSON.stringify(r)) return;
  await writeJsonAtomic(vmFile(projDir, vm, 'backend'), r);
}
