/** qemu-img, through execa: inspect images, create copy-on-write overlays and volumes, grow disks. */
import { execa } from 'execa';
import { chmod, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BackendError } from '../../schemas/errors.js';
import { ensureDir, FILE_MODE } from '../state/atomic.js';

export interface QemuImgInfo {
  format: string;
  /** bytes */
  virtualSize: number;
  backingFile: string | null;
}

/** Structural view of ResolvedImage (src/images/resolve.ts), kept here to avoid an import cycle. */
export interface BaseImage {
  path: string;
  format: string;
  virtualSize: number;
}

const GiB = 1024 ** 3;

async function qemuImg(args: string[], what: string): Promise<string> {
  try {
    const r = await execa('qemu-img', args);
    return r.stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: string; shortMessage?: string };
    if (e.code === 'ENOENT')
      throw new BackendError('QemuImgMissing', 'qemu-img is not installed (apt-get install qemu-utils)', { cause: err });
    const detail = (e.stderr || e.shortMessage || String(err)).trim();
    throw new BackendError('QemuImgFailed', `${what}: ${detail}`, { cause: err });
  }
}

/** Format, virtual size and backing file of an image. `-U`: works while a running QEMU holds it. */
export async function qemuImgInfo(path: string): Promise<QemuImgInfo> {
  const out = await qemuImg(['info', '-U', '--output=json', path], `cannot read image ${path}`);
  let j: { format?: string; 'virtual-size'?: number; 'full-backing-filename'?: string; 'backing-filename'?: string };
  try {
    j = JSON.parse(out) as typeof j;
  } catch (err) {
    throw new BackendError('QemuImgFailed', `qemu-img info ${path} printed no JSON`, { cause: err });
  }
  return {
    format: j.format ?? 'raw',
    virtualSize: j['virtual-size'] ?? 0,
    backingFile: j['full-backing-filename'] ?? j['backing-filename'] ?? null,
  };
}

/**
 * A qcow2 overlay over `base` (base is only read, never written). With `sizeGiB` larger than
 * the base's virtual size the overlay is made that big; smaller or null keeps the base's size.
 */
export async function createOverlay(base: BaseImage, overlayPath: string, sizeGiB: number | null): Promise<void> {
  await ensureDir(dirname(overlayPath));
  const args = ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', base.path, overlayPath];
  if (sizeGiB !== null && sizeGiB * GiB > base.virtualSize) args.push(`${sizeGiB}G`);
  try {
    await qemuImg(args, `cannot create the disk ${overlayPath} over ${base.path}`);
    // qemu-img creates with the umask's mode: a VM's disk is owner-only like every state file
    await chmod(overlayPath, FILE_MODE);
  } catch (err) {
    await rm(overlayPath, { force: true });
    throw err;
  }
}

/** A qcow2 overlay over the qcow2 `backing` (a warm template's frozen disk), the same size. */
export async function qemuImgCreateBacked(backing: string, overlayPath: string): Promise<void> {
  await ensureDir(dirname(overlayPath));
  try {
    await qemuImg(
      ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, overlayPath],
      `cannot create the disk ${overlayPath} over ${backing}`,
    );
    await chmod(overlayPath, FILE_MODE);
  } catch (err) {
    await rm(overlayPath, { force: true });
    throw err;
  }
}

/** Grow a disk to `sizeGiB`. Never shrinks: a smaller size is a no-op (shrinking is a recreate). */
export async function resizeImage(path: string, sizeGiB: number): Promise<boolean> {
  const info = await qemuImgInfo(path);
  if (sizeGiB * GiB <= info.virtualSize) return false;
  await qemuImg(['resize', '-q', '-f', info.format, path, `${sizeGiB}G`], `cannot grow ${path} to ${sizeGiB} GiB`);
  return true;
}

/** A new, empty qcow2 volume. */
/** A named volume's size when the project file gives none. */
export const DEFAULT_VOLUME_GIB = 10;

export async function createVolume(path: string, sizeGiB: number): Promise<void> {
  await ensureDir(dirname(path));
  await qemuImg(['create', '-q', '-f', 'qcow2', path, `${sizeGiB}G`], `cannot create the volume ${path}`);
  await chmod(path, FILE_MODE);
}
