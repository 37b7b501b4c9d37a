/**
 * A VM's files on a remote libvirt host (pool.ts): the QEMU backend's prepare still runs here
 * (it resolves and verifies the image, makes the keys and the seed ISO, and leaves a small local
 * overlay tend does not boot), then the base image is uploaded into the host's pool once, the
 * VM's disk is a qcow2 overlay volume backed by it, and the seed is uploaded next to it.
 */
import { stat } from 'node:fs/promises';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { VolumeObserved } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';
import { exists } from '../state/atomic.js';
import { DEFAULT_VOLUME_GIB, qemuImgInfo } from '../images/qemu-img.js';
// src/ssh loads ssh2: imported when a remote host needs it (every command loads this backend)
import type { Virsh } from './virsh.js';
import { POOL_NAME, baseVolumeName, deleteVolume, ensurePool, sha256File, uploadFile, vmVolumeName, volumeInfo } from './pool.js';
import { remoteVolumeName, remoteVolumePrefix } from './names.js';

const GiB = 1024 ** 3;

/** What a remote host cannot do for a VM yet, checked before any action. */
export function requireRemoteSupport(vm: VmSpec, uri: string): void {
  const no = (what: string): never => {
    throw new BackendError('LibvirtRemoteUnsupported', `${vm.name}: ${what} is not supported on a remote libvirt host (${uri}) yet`);
  };
  if (vm.volumes.some((v) => v.kind !== 'named')) no('a host folder (it is on this machine: use a named volume and tend cp)');
  if (vm.network.mode === 'tap') no('network tap');
  if (vm.devices.length > 0) no('PCI passthrough');
}

/** The paths the remote domain XML names, in the pool's directory. */
export function remotePaths(poolDir: string, dom: string, seed: boolean): { disk: string; seed: string | null; consoleLog: string } {
  return {
    disk: `${poolDir}/${vmVolumeName(dom, 'disk')}`,
    seed: seed ? `${poolDir}/${vmVolumeName(dom, 'seed')}` : null,
    consoleLog: `${poolDir}/${vmVolumeName(dom, 'console')}`,
  };
}

const hashes = new Map<string, Promise<string>>();
const uploads = new Map<string, Promise<string>>();

/** sha256 of a local base image, once per process per file version. */
async function baseHash(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}:${st.size}:${st.mtimeMs}`;
  let p = hashes.get(key);
  if (!p) hashes.set(key, (p = sha256File(path)));
  return p;
}

/** sha256 of a file on the host (over the SSH jump); null when the transport has no SSH. */
async function remoteSha256(uri: string, path: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<string | null> {
  const { connectJump, jumpOf } = await import('../ssh/jump.js');
  const { execOnClient, shellQuote } = await import('../ssh/exec.js');
  let jump;
  try {
    jump = jumpOf(uri, env);
  } catch {
    return null;
  }
  if (!jump) return null;
  const client = await connectJump(jump, { ...(signal ? { signal } : {}), env });
  try {
    const t = { host: jump.host, port: jump.port, user: jump.user, privateKey: jump.keyfile ?? '' };
    const r = await execOnClient(client, t, `sha256sum -- ${shellQuote(path)}`, signal ? { signal } : {});
    return r.code === 0 ? (r.stdout.split(/\s/)[0] ?? null) : null;
  } finally {
    client.on('error', () => {});
    client.end();
  }
}

/**
 * The base volume for a local base image: uploaded when the pool has none of that name and
 * size; a fresh upload is checked against the local sha256 on the host. Returns its path.
 */
export async function ensureBase(
  virsh: Virsh,
  poolDir: string,
  base: { path: string; format: string },
  o: { env: NodeJS.ProcessEnv; onProgress?: (line: string) => void; signal?: AbortSignal },
): Promise<string> {
  const sha = await baseHash(base.path);
  const name = baseVolumeName(sha, base.format);
  const key = `${virsh.uri}\n${name}`;
  let p = uploads.get(key);
  if (!p) {
    p = (async () => {
      const size = (await stat(base.path)).size;
      const have = await volumeInfo(virsh, name, o.signal);
      if (have && have.physical === size) return `${poolDir}/${name}`;
      o.onProgress?.(`uploading ${base.path} to ${virsh.uri} (pool ${'tend'}, volume ${name})`);
      await uploadFile(virsh, name, base.path, o.signal);
      const remote = await remoteSha256(virsh.uri, `${poolDir}/${name}`, o.env, o.signal);
      if (remote !== null && remote !== sha) {
        await deleteVolume(virsh, name);
        throw new BackendError('ImageUploadCorrupt', `${name} on ${virsh.uri} has sha256 ${remote} after the upload, expected ${sha}`);
      }
      await virsh.tryRun(['pool-refresh', 'tend'], o.signal ? { signal: o.signal } : {});
      return `${poolDir}/${name}`;
    })();
    uploads.set(key, p);
    p.catch(() => uploads.delete(key));
  }
  return p;
}

/**
 * The VM's volumes on the host: base uploaded, disk overlay (made when missing or on
 * recreate; grown when `disk` grew and it is not running), seed uploaded.
 */
export async function prepareRemoteFiles(
  virsh: Virsh,
  project: Project,
  dom: string,
  vm: VmSpec,
  local: { disk: string; seed: string },
  o: { recreateDisk: boolean; active: boolean; env: NodeJS.ProcessEnv; onProgress?: (line: string) => void; signal?: AbortSignal },
): Promise<void> {
  const { signal } = o;
  const poolDir = await ensurePool(virsh, signal);
  const diskName = vmVolumeName(dom, 'disk');
  if (o.recreateDisk) await deleteVolume(virsh, diskName, signal);
  const disk = await volumeInfo(virsh, diskName, signal);
  if (!disk) {
    // the local overlay the QEMU backend made names the base image it resolved
    const info = await qemuImgInfo(local.disk);
    if (!info.backingFile) throw new BackendError('VmNotPrepared', `${vm.name}: ${local.disk} has no base image`);
    const baseInfo = await qemuImgInfo(info.backingFile);
    const basePath = await ensureBase(virsh, poolDir, { path: info.backingFile, format: baseInfo.format }, o);
    const capacity = Math.max(baseInfo.virtualSize, (vm.disk ?? 0) * GiB);
    await virsh.run(
      [
        'vol-create-as',
        'tend',
        diskName,
        String(capacity),
        '--format',
        'qcow2',
        '--backing-vol',
        basePath,
        '--backing-vol-format',
        baseInfo.format,
      ],
      { signal },
    );
  } else if (vm.disk !== null && !o.active && vm.disk * GiB > disk.capacity) {
    await virsh.run(['vol-resize', '--pool', 'tend', diskName, String(vm.disk * GiB)], { signal });
    o.onProgress?.(`${vm.name}: disk grown to ${vm.disk} GiB`);
  }
  await ensureRemoteVolumes(virsh, project, vm, signal);
  const seedName = vmVolumeName(dom, 'seed');
  if (vm.cloudInit !== null && (await exists(local.seed))) await uploadFile(virsh, seedName, local.seed, signal);
  else await deleteVolume(virsh, seedName, signal);
}

/** The VM's volumes (disk, seed, console log); the shared base stays. */
export async function removeRemoteFiles(virsh: Virsh, dom: string, signal?: AbortSignal): Promise<void> {
  if ((await virsh.tryRun(['pool-info', 'tend'], { signal })) === null) return;
  await virsh.tryRun(['pool-refresh', 'tend'], { signal });
  for (const k of ['disk', 'seed', 'console'] as const) await deleteVolume(virsh, vmVolumeName(dom, k), signal);
}

/**
 * The serial console log of a VM on a remote host, copied to `dest` (`virsh vol-download`);
 * false when the host has none yet.
 */
export async function downloadConsoleLog(virsh: Virsh, dom: string, dest: string, signal?: AbortSignal): Promise<boolean> {
  const name = vmVolumeName(dom, 'console');
  if ((await volumeInfo(virsh, name, signal)) === null) return false;
  await virsh.run(['vol-download', '--pool', 'tend', name, dest], { signal, timeoutMs: 0 });
  return true;
}

/** The VM's named volumes in the pool, each created (empty qcow2) when missing; never replaced. */
export async function ensureRemoteVolumes(virsh: Virsh, project: Project, vm: VmSpec, signal?: AbortSignal): Promise<void> {
  for (const v of vm.volumes) {
    if (v.kind !== 'named') continue;
    const name = remoteVolumeName(project, v.name);
    if (await volumeInfo(virsh, name, signal)) continue;
    const gib = project.volumes[v.name]?.size ?? DEFAULT_VOLUME_GIB;
    await virsh.run(['vol-create-as', POOL_NAME, name, String(gib * GiB), '--format', 'qcow2'], { signal });
  }
}

/** The project's named volumes in the host's pool, sorted by name; none when there is no pool. */
export async function listRemoteVolumes(virsh: Virsh, project: Project, signal?: AbortSignal): Promise<VolumeObserved[]> {
  if ((await virsh.tryRun(['pool-info', POOL_NAME], { signal })) === null) return [];
  await virsh.tryRun(['pool-refresh', POOL_NAME], { signal });
  const prefix = remoteVolumePrefix(project);
  const out: VolumeObserved[] = [];
  // `vol-list -q`: "NAME  PATH" per line
  for (const line of (await virsh.run(['vol-list', POOL_NAME], { signal })).split('\n')) {
    const [file, path] = line.trim().split(/\s+/);
    if (!file?.startsWith(prefix) || !file.endsWith('.qcow2') || !path) continue;
    const info = await volumeInfo(virsh, file, signal);
    out.push({
      name: file.slice(prefix.length, -'.qcow2'.length),
      path: `${virsh.uri} ${path}`,
      allocated: info?.physical ?? null,
      virtualSize: info?.capacity ?? null,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Delete named volumes from the host's pool (a missing one is not an error). */
export async function removeRemoteVolumes(virsh: Virsh, project: Project, names: string[], signal?: AbortSignal): Promise<void> {
  if ((await virsh.tryRun(['pool-info', POOL_NAME], { signal })) === null) return;
  await virsh.tryRun(['pool-refresh', POOL_NAME], { signal });
  for (const n of names) await deleteVolume(virsh, remoteVolumeName(project, n), signal);
}
