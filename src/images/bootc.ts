/**
 * A bootc container image (vms.yml `source: {kind: bootc, image}`) made into a disk, as ov does:
 * `bootc install to-disk --via-loopback` inside the image itself, run by podman as a privileged
 * container that shares the host's /dev (`-v /dev:/dev`: with --privileged alone, the loop device
 * losetup creates is invisible in the container's own /dev) and its container storage. The raw
 * disk is converted to qcow2 and registered in the image store under `bootcStoreName`, so VMs
 * overlay it like any base image. Without podman or the image, `bootcMissing` says what is
 * missing and how to get it, before anything runs.
 */
import { mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { ImageSource } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { imagesDir, shortHash } from '../state/paths.js';
import { importImage, inspectImage, type StoredImage } from './store.js';

/** Size of the raw disk bootc installs to when the VM gives none (GiB, sparse). */
export const BOOTC_DEFAULT_DISK_GIB = 20;

export type BootcSource = ImageSource & { kind: 'bootc' };

function optionsOf(src: BootcSource): NonNullable<ImageSource['bootc']> {
  return src.bootc ?? { transport: 'registry', rootfs: null, rootSize: null, kernelArgs: [] };
}

/** The store name of the disk built from `src` (the options that shape the disk are part of it). */
export function bootcStoreName(src: BootcSource, diskGiB: number): string {
  const o = optionsOf(src);
  return `bootc:${src.ref}@${shortHash(JSON.stringify([o.transport, o.rootfs, o.rootSize, o.kernelArgs, diskGiB]), 12)}`;
}

/** What podman runs the image as: a transport prefix for OCI layouts and archives. */
function podmanImageRef(src: BootcSource): string {
  const t = optionsOf(src).transport;
  return t === 'oci' ? `oci:${src.ref}` : t === 'oci-archive' ? `oci-archive:${src.ref}` : src.ref;
}

/** The podman argv (without "podman") that writes the disk to /output/<file> of `outDir`. */
export function bootcInstallArgv(src: BootcSource, outDir: string, file = 'disk.raw'): string[] {
  const o = optionsOf(src);
  return [
    'run',
    '--rm',
    '--privileged',
    '--pid=host',
    '--security-opt',
    'label=type:unconfined_t',
    ...(o.transport === 'containers-storage' ? ['--pull=never'] : []),
    '-v',
    '/dev:/dev',
    '-v',
    '/var/lib/containers:/var/lib/containers',
    '-v',
    `${outDir}:/output`,
    podmanImageRef(src),
    'bootc',
    'install',
    'to-disk',
    '--via-loopback',
    '--generic-image',
    '--wipe',
    ...(o.rootfs ? ['--filesystem', o.rootfs] : []),
    ...(o.rootSize ? ['--root-size', `${o.rootSize}G`] : []),
    ...o.kernelArgs.flatMap((k) => ['--karg', k]),
    `/output/${file}`,
  ];
}

/**
 * What is missing to build `src` on this host, in words with the way to get it; null when podman
 * and the image are there.
 */
export async function bootcMissing(src: BootcSource, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const ver = await execa('podman', ['--version'], { env, reject: false, stdin: 'ignore' });
  if (ver.failed && (ver.code === 'ENOENT' || ver.exitCode === undefined)) {
    return `podman is not installed, and the bootc image ${src.ref} is made into a disk by podman: install it (apt-get install podman, dnf install podman)`;
  }
  const t = optionsOf(src).transport;
  if (t === 'oci' || t === 'oci-archive') {
    try {
      await stat(src.ref);
      return null;
    } catch {
      return `the ${t === 'oci' ? 'OCI layout folder' : 'OCI archive'} ${src.ref} does not exist: write its path, or create it with podman save --format ${t === 'oci' ? 'oci-dir' : 'oci-archive'}`;
    }
  }
  const has = await execa('podman', ['image', 'exists', src.ref], { env, reject: false, stdin: 'ignore' });
  if (has.exitCode === 0) return null;
  return `the bootc image ${src.ref} is not in podman's image storage: pull it (podman pull ${src.ref}) or build it (podman build -t ${src.ref} .)`;
}

export interface BootcBuildOptions {
  /** raw disk size in GiB (the VM's disk; default BOOTC_DEFAULT_DISK_GIB) */
  diskGiB?: number | null;
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** The stored disk of `src`, built first when there is none. Fails at once when podman or the image is missing. */
export async function bootcDisk(stateRoot: string, src: BootcSource, opts: BootcBuildOptions = {}): Promise<StoredImage> {
  const size = opts.diskGiB ?? BOOTC_DEFAULT_DISK_GIB;
  const name = bootcStoreName(src, size);
  const have = await inspectImage(stateRoot, name);
  if (have) return have;
  const missing = await bootcMissing(src, opts.env);
  if (missing) throw new BackendError('BootcUnavailable', missing);
  const dir = imagesDir(stateRoot);
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, '.tmp-bootc-'));
  try {
    const raw = join(work, 'disk.raw');
    const fh = await open(raw, 'w');
    await fh.truncate(size * 1024 ** 3); // sparse: bootc partitions and fills it through a loop device
    await fh.close();
    opts.onProgress?.(`bootc install to-disk from ${src.ref} (${size} GiB)`);
    const run = await execa('podman', bootcInstallArgv(src, work), {
      env: opts.env,
      reject: false,
      stdin: 'ignore',
      all: true,
      cancelSignal: opts.signal,
      forceKillAfterDelay: 30_000,
    });
    if (run.exitCode !== 0) {
      const tail = String(run.all ?? '')
        .trim()
        .split('\n')
        .slice(-15)
        .join('\n');
      throw new BackendError(
        'BootcInstallFailed',
        `bootc install to-disk from ${src.ref} failed (podman exit ${run.exitCode ?? run.signal}); it needs root (sudo) and loop devices:\n${tail}`,
      );
    }
    const qcow2 = join(work, 'disk.qcow2');
    await execa('qemu-img', ['convert', '-O', 'qcow2', raw, qcow2], { stdin: 'ignore', cancelSignal: opts.signal });
    await rm(raw, { force: true });
    return await importImage(stateRoot, name, qcow2, { move: true });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
