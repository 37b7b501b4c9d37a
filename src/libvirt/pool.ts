/**
 * Files of VMs on a remote libvirt host live in a storage pool there: a directory pool named
 * `tend` (created when missing: `virsh pool-define-as tend dir --target /var/lib/libvirt/tend`,
 * pool-build, pool-start, pool-autostart; on a /session URI tend cannot know the remote home, so
 * it asks the user to create it). tend never touches the host's networks.
 *
 * Volumes:
 *   base-<sha256 prefix>.<format>   a base image, uploaded once (`virsh vol-upload`), shared by VMs;
 *                                   the name carries the image's checksum, an existing volume of
 *                                   another size is uploaded again, a new upload is checked
 *                                   with `sha256sum` on the host (over the SSH jump)
 *   <domain>-disk.qcow2            the VM's disk: a qcow2 overlay backed by the base volume
 *   <domain>-seed.iso              the VM's NoCloud seed, uploaded at every prepare (a few KiB)
 *   <domain>-console.log           the serial console's log (virtlogd writes it; `tend logs --console`
 *                                   downloads it)
 * `down --destroy` deletes the VM's volumes, never a base.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { BackendError } from '../../schemas/errors.js';
import type { Virsh } from './virsh.js';
import { parseRemoteUri } from './remote-uri.js';

export const POOL_NAME = 'tend';
export const POOL_DIR = '/var/lib/libvirt/tend';

export type VolumeKind = 'disk' | 'seed' | 'console';
const SUFFIX: Record<VolumeKind, string> = { disk: '-disk.qcow2', seed: '-seed.iso', console: '-console.log' };

export function vmVolumeName(dom: string, kind: VolumeKind): string {
  return `${dom}${SUFFIX[kind]}`;
}

export function baseVolumeName(sha256: string, format: string): string {
  return `base-${sha256.slice(0, 16)}.${format}`;
}

function poolFix(uri: string): string {
  return `virsh -c '${uri}' pool-define-as ${POOL_NAME} dir --target DIR && virsh -c '${uri}' pool-build ${POOL_NAME} && virsh -c '${uri}' pool-start ${POOL_NAME} && virsh -c '${uri}' pool-autostart ${POOL_NAME}`;
}

function targetPath(xml: string): string | null {
  return /<target>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1] ?? null;
}

/** The pool's directory on the host, the pool defined, built and started first when needed. */
export async function ensurePool(virsh: Virsh, signal?: AbortSignal): Promise<string> {
  let xml = await virsh.tryRun(['pool-dumpxml', POOL_NAME], { signal });
  if (xml === null) {
    const r = parseRemoteUri(virsh.uri);
    if (r && r.path !== '/system') {
      throw new BackendError(
        'LibvirtPoolMissing',
        `${virsh.uri} has no storage pool "${POOL_NAME}" and tend cannot choose a directory for a session daemon: create it: ${poolFix(virsh.uri)}`,
      );
    }
    // two VMs prepared at once may both define it: the loser finds it defined
    await virsh.tryRun(['pool-define-as', POOL_NAME, 'dir', '--target', POOL_DIR], { signal });
    xml = await virsh.run(['pool-dumpxml', POOL_NAME], { signal });
    await virsh.tryRun(['pool-build', POOL_NAME], { signal });
    await virsh.tryRun(['pool-autostart', POOL_NAME], { signal });
  }
  const info = await virsh.run(['pool-info', POOL_NAME], { signal });
  if (!/^State:\s+running/m.test(info)) {
    await virsh.tryRun(['pool-start', POOL_NAME], { signal });
    const again = await virsh.run(['pool-info', POOL_NAME], { signal });
    if (!/^State:\s+running/m.test(again))
      throw new BackendError(
        'LibvirtPoolFailed',
        `storage pool "${POOL_NAME}" on ${virsh.uri} does not start: ${again.replace(/\n/g, '; ')}`,
      );
  }
  const path = targetPath(xml);
  if (!path) throw new BackendError('LibvirtPoolFailed', `storage pool "${POOL_NAME}" on ${virsh.uri} has no target directory`);
  return path;
}

export interface VolumeInfo {
  /** bytes the guest sees (qcow2: virtual size) */
  capacity: number;
  /** bytes of the file on the host */
  physical: number;
}

/** A volume's sizes, or null when the pool has no such volume. */
export async function volumeInfo(virsh: Virsh, name: string, signal?: AbortSignal): Promise<VolumeInfo | null> {
  await virsh.tryRun(['pool-refresh', POOL_NAME], { signal });
  const plain = await virsh.tryRun(['vol-info', '--pool', POOL_NAME, name, '--bytes'], { signal });
  if (plain === null) return null;
  // --physical: the Allocation line holds the file's size
  const phys = await virsh.run(['vol-info', '--pool', POOL_NAME, name, '--bytes', '--physical'], { signal });
  const num = (text: string, k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { capacity: num(plain, 'Capacity'), physical: num(phys, 'Allocation') };
}

export async function deleteVolume(virsh: Virsh, name: string, signal?: AbortSignal): Promise<boolean> {
  return (await virsh.tryRun(['vol-delete', '--pool', POOL_NAME, name], { signal })) !== null;
}

/** Create a raw volume of exactly the file's size and stream the file into it. */
export async function uploadFile(virsh: Virsh, name: string, file: string, signal?: AbortSignal): Promise<void> {
  const size = (await stat(file)).size;
  await deleteVolume(virsh, name, signal);
  await virsh.run(['vol-create-as', POOL_NAME, name, String(size), '--format', 'raw'], { signal });
  try {
    // no time limit: a base image over a slow link takes what it takes
    await virsh.run(['vol-upload', '--pool', POOL_NAME, name, file], { signal, timeoutMs: 0 });
  } catch (err) {
    await deleteVolume(virsh, name);
    throw err;
  }
}

/** sha256 (hex) of a local file. */
export function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    const s = createReadStream(path, signal ? { signal } : {});
    s.on('data', (b) => h.update(b));
    s.on('error', reject);
    s.on('end', () => resolve(h.digest('hex')));
  });
}
