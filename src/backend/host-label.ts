/**
 * The HOST a VM runs on, as `tend ps` and `tend ls` show it: `local` for the QEMU backend and a
 * local libvirt URI, `user@host[:port]` for a remote libvirt URI (src/libvirt/remote-uri.ts).
 * One function, so every listing says it the same way.
 */
import type { BackendRecord } from './record.js';
import { parseRemoteUri, remoteLabel } from '../libvirt/remote-uri.js';

export const LOCAL_HOST_LABEL = 'local';

export function hostLabel(rec: Pick<BackendRecord, 'backend' | 'uri'> | null | undefined): string {
  if (!rec || rec.backend !== 'libvirt' || !rec.uri) return LOCAL_HOST_LABEL;
  const r = parseRemoteUri(rec.uri);
  return r ? remoteLabel(r) : LOCAL_HOST_LABEL;
}
