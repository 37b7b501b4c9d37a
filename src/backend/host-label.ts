/**
 * The HOST a VM runs on, as `tend ps` and `tend ls` show it (their HOST column and `host` field):
 * `local` for tend's own QEMU processes and a local libvirt URI (qemu:///system, qemu:///session);
 * for a remote libvirt URI its host, with the port when the URI names one
 * (`qemu+ssh://root@kvm1:2222/system` → `kvm1:2222`). A remote URI that points back at this
 * machine (127.0.0.1 over SSH) is still shown as that host: its VM is run the remote way (a
 * storage pool, guest access through the SSH jump). The one place that decides it.
 */
import type { BackendRecord } from './record.js';
import { parseRemoteUri } from '../libvirt/remote-uri.js';

export const LOCAL_HOST_LABEL = 'local';

/**
 * A VM's pid as a process of this machine: null for a VM on another host, whose observed "pid"
 * is its libvirt domain id there (the identity `tend watch` follows, not a process to show or
 * to read /proc of).
 */
export function localPid(rec: Pick<BackendRecord, 'backend' | 'uri'> | null | undefined, pid: number | null): number | null {
  return hostLabel(rec) === LOCAL_HOST_LABEL ? pid : null;
}

export function hostLabel(rec: Pick<BackendRecord, 'backend' | 'uri'> | null | undefined): string {
  if (!rec || rec.backend !== 'libvirt' || !rec.uri) return LOCAL_HOST_LABEL;
  const r = parseRemoteUri(rec.uri);
  if (!r) return LOCAL_HOST_LABEL;
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  return r.port !== null ? `${host}:${r.port}` : host;
}
