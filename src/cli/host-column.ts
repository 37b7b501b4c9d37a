/**
 * The HOST column of `tend ls` (and its `host` field): where a VM runs. "local" for tend's own
 * QEMU processes and a local libvirt daemon; the host of a remote libvirt URI
 * (qemu+ssh://user@host/system → host). The one place that decides it.
 */
import type { BackendRecord } from '../backend/record.js';

export function hostOf(rec: BackendRecord | null): string {
  if (!rec || rec.backend !== 'libvirt' || !rec.uri) return 'local';
  try {
    const host = new URL(rec.uri).hostname;
    return host && host !== 'localhost' && host !== '127.0.0.1' ? host : 'local';
  } catch {
    return 'local';
  }
}
