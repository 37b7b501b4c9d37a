/** The stable MAC address of a VM's NIC on a host bridge (QEMU and libvirt backends, guest address lookup). */
import { createHash } from 'node:crypto';

/** Stable MAC of a VM's TAP NIC (52:54:00 prefix, like libvirt). */
export function tapMac(projDir: string, vm: string): string {
  const h = createHash('sha256').update(`tend-tap:${projDir}:${vm}`).digest();
  return `52:54:00:${[h[0], h[1], h[2]].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}
