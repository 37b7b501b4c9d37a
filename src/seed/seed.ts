/** The NoCloud seed ISO (label `cidata`) of a VM, written atomically. */
import type { VmSpec } from '../../schemas/model.js';
import { writeFileAtomic } from '../state/atomic.js';
import { renderMetaData, renderUserData } from './cloud-config.js';
import { buildIso } from './iso9660.js';

export const SEED_LABEL = 'cidata';

export function seedFiles(vm: VmSpec, opts: { instanceId: string; publicKey: string; user: string }): Record<string, string> {
  return {
    'user-data': renderUserData(vm, { user: opts.user, publicKey: opts.publicKey }),
    'meta-data': renderMetaData(vm, opts.instanceId),
  };
}

export async function writeSeed(vm: VmSpec, opts: { isoPath: string; instanceId: string; publicKey: string; user: string }): Promise<void> {
  await writeFileAtomic(opts.isoPath, buildIso(SEED_LABEL, seedFiles(vm, opts)));
}
