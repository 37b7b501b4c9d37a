/**
 * Host folders (`./site:/srv/site[:ro]`) shared into the guest with virtiofs: one virtiofsd
 * per folder, started detached before QEMU (it serves one QEMU and exits when that QEMU goes
 * away), and the QEMU arguments that connect to it (vhost-user-fs needs the guest RAM in a
 * shared memory backend: the machine's RAM itself, under QEMU's default RAM id `pc.ram`, so a
 * warm template's memory, saved from a plain `-m`, restores into it). The guest mounts each
 * folder by its tag (src/seed/volumes.ts).
 *
 * `:ro` is enforced by the guest's read-only mount; the Rust virtiofsd also gets --readonly.
 * The C virtiofsd shipped with QEMU 7.2 (Debian 12: /usr/lib/qemu/virtiofsd) needs root for its
 * sandbox; the Rust one runs unprivileged with --sandbox=none.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { VmSpec } from '../../schemas/model.js';
import type { VolumeObserved } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';
import { hostFolders, volumeSerial } from '../seed/volumes.js';
import { shortHash, shortRuntimeDir, volumePath, volumesDir } from '../state/paths.js';
import { qemuImgInfo } from '../images/qemu-img.js';
import { ensureDir } from '../state/atomic.js';

export const VIRTIOFSD_CANDIDATES = ['/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd'];
/** QEMU's default RAM id on pc and q35 (query-machines' default-ram-id): the migration stream names the RAM by it. */
export const MEMORY_BACKEND_ID = 'pc.ram';

export interface HostFolderShare {
  tag: string;
  source: string;
  readOnly: boolean;
  /** the vhost-user socket virtiofsd listens on */
  socket: string;
}

/** The shares of a VM (none when it has no host folders). Socket paths are short (108-byte limit). */
export function hostFolderShares(vm: VmSpec, vmDirPath: string, env: NodeJS.ProcessEnv = process.env): HostFolderShare[] {
  return hostFolders(vm).map(({ mount, tag }) => ({
    tag,
    source: mount.source,
    readOnly: mount.readOnly,
    socket: join(shortRuntimeDir(env), `${shortHash(`${vmDirPath}:${tag}`, 16)}.vfs`),
  }));
}

/**
 * QEMU arguments for the shares: the machine's RAM as a shared memfd and one vhost-user-fs per
 * share; `devices: false` gives the memory only (a warm clone's restore: the devices are
 * hot-plugged after it, src/qemu/hotplug.ts).
 */
export function hostFolderArgs(vm: VmSpec, shares: readonly HostFolderShare[], devices = true): string[] {
  if (shares.length === 0) return [];
  const a = sharedMemoryArgs(vm);
  if (devices) {
    shares.forEach((s, i) => {
      a.push('-chardev', `socket,id=vfs${i},path=${s.socket.replaceAll(',', ',,')}`);
      a.push('-device', `vhost-user-fs-pci,chardev=vfs${i},tag=${s.tag}`);
    });
  }
  return a;
}

export function sharedMemoryArgs(vm: VmSpec): string[] {
  return [
    '-object',
    `memory-backend-memfd,id=${MEMORY_BACKEND_ID},size=${vm.memory}M,share=on`,
    '-machine',
    `memory-backend=${MEMORY_BACKEND_ID}`,
  ];
}

/** `argv` without the shared memory of host folders: the guest sees the same RAM either way. */
export function withoutSharedMemory(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1] ?? '';
    const memfd = argv[i] === '-object' && v.startsWith(`memory-backend-memfd,id=${MEMORY_BACKEND_ID},`);
    if (memfd || (argv[i] === '-machine' && v === `memory-backend=${MEMORY_BACKEND_ID}`)) i++;
    else out.push(argv[i] as string);
  }
  return out;
}

/** The virtiofsd binary: $TEND_VIRTIOFSD, the usual install paths, then PATH. Null when none. */
export function findVirtiofsd(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.TEND_VIRTIOFSD) return env.TEND_VIRTIOFSD;
  for (const c of VIRTIOFSD_CANDIDATES) if (existsSync(c)) return c;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'virtiofsd'))) return join(dir, 'virtiofsd');
  }
  return null;
}

/** virtiofsd argv for one share; `rust`: the Rust virtiofsd (long options, unprivileged). */
export function virtiofsdArgv(share: HostFolderShare, rust: boolean): string[] {
  if (rust) {
    return [
      `--socket-path=${share.socket}`,
      `--shared-dir=${share.source}`,
      '--cache=auto',
      '--sandbox=none',
      ...(share.readOnly ? ['--readonly'] : []),
    ];
  }
  // FUSE's option parser splits on ",": a comma (or backslash) in the folder's path is escaped
  return [`--socket-path=${share.socket}`, '-o', `source=${share.source.replace(/[\\,]/g, '\\$&')}`, '-o', 'cache=auto'];
}

async function isRustVirtiofsd(binary: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(binary, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', () => resolve(false));
    p.on('close', () => resolve(out.includes('--shared-dir')));
  });
}

/**
 * Start one detached virtiofsd per share and wait until each socket exists. Every share's
 * source must be an existing folder. `logPath`: virtiofsd's stdout/stderr (appended).
 */
export async function startVirtiofsd(
  vmName: string,
  shares: readonly HostFolderShare[],
  opts: {
    logPath: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    sleep?: (ms: number) => Promise<void>;
    /** told each helper's pid and socket as soon as it is spawned (before its socket appears), to record it */
    onSpawn?: (pid: number, socket: string) => Promise<void>;
  },
): Promise<number[]> {
  if (shares.length === 0) return [];
  const env = opts.env ?? process.env;
  const binary = findVirtiofsd(env);
  if (!binary) {
    throw new BackendError(
      'VirtiofsdMissing',
      `${vmName}: host folders need virtiofsd (Debian 12: qemu-system-common ships /usr/lib/qemu/virtiofsd; newer: apt-get install virtiofsd)`,
    );
  }
  const rust = await isRustVirtiofsd(binary);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const pids: number[] = [];
  for (const s of shares) {
    const st = await stat(s.source).catch(() => null);
    if (!st?.isDirectory()) throw new BackendError('HostFolderMissing', `${vmName}: host folder ${s.source} does not exist`);
    await ensureDir(s.socket.slice(0, s.socket.lastIndexOf('/')));
    await rm(s.socket, { force: true });
    const fd = openSync(opts.logPath, 'a', 0o600);
    let exited: number | null = null;
    try {
      const child = spawn(binary, virtiofsdArgv(s, rust), { detached: true, stdio: ['ignore', fd, fd], env });
      child.on('exit', (code) => (exited = code ?? -1));
      child.on('error', () => (exited = -1));
      child.unref();
      if (child.pid === undefined) throw new BackendError('VirtiofsdFailed', `${vmName}: cannot start ${binary}`);
      pids.push(child.pid);
    } finally {
      closeSync(fd);
    }
    await opts.onSpawn?.(pids[pids.length - 1] as number, s.socket);
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    while (!existsSync(s.socket)) {
      if (exited !== null || Date.now() > deadline) {
        const log = (await readFile(opts.logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
        throw new BackendError(
          'VirtiofsdFailed',
          `${vmName}: virtiofsd for ${s.source} ${exited !== null ? `exited (${exited})` : 'did not create its socket'}${log ? `: ${log}` : ''}${!rust && process.getuid?.() !== 0 ? ' (the C virtiofsd needs root; install the Rust virtiofsd to share folders unprivileged)' : ''}`,
        );
      }
      await sleep(50);
    }
  }
  return pids;
}

/**
 * PCI slots of named volume disks, counted down from 0x1e. QEMU creates the boot disk of
 * `-drive if=virtio` after every `-device`, so a volume's virtio-blk device would otherwise get
 * a lower slot, and SeaBIOS (which tries disks in PCI order) would try to boot the empty volume
 * and stop there. High fixed slots keep the boot disk first and shift no other device.
 */
export const VOLUME_SLOT_TOP = 0x1e;
export const MAX_VOLUMES = 14;

export function volumePciAddr(index: number): string {
  if (index < 0 || index >= MAX_VOLUMES) throw new BackendError('TooManyVolumes', `a VM can mount at most ${MAX_VOLUMES} named volumes`);
  return `0x${(VOLUME_SLOT_TOP - index).toString(16)}`;
}

/** The `-device` value of a VM's named volume disk: serial (what the guest finds it by) and slot. */
export function volumeDeviceArg(vm: VmSpec, name: string): string {
  const named = vm.volumes.flatMap((m) => (m.kind === 'named' ? [m.name] : []));
  return `virtio-blk-pci,drive=vol-${name},serial=${volumeSerial(name)},addr=${volumePciAddr(named.indexOf(name))}`;
}

/** The project's named volumes: the qcow2 files of its volumes folder, by name. */
export async function listVolumes(pd: string): Promise<VolumeObserved[]> {
  const dir = volumesDir(pd);
  const files = await readdir(dir).catch(() => [] as string[]);
  const names = files
    .filter((f) => f.endsWith('.qcow2'))
    .map((f) => f.slice(0, -'.qcow2'.length))
    .sort();
  const out: VolumeObserved[] = [];
  for (const name of names) {
    const path = volumePath(pd, name);
    const st = await stat(path).catch(() => null);
    if (!st) continue;
    const virtualSize = await qemuImgInfo(path).then(
      (i) => i.virtualSize,
      () => null,
    );
    out.push({ name, path, allocated: st.blocks * 512, virtualSize });
  }
  return out;
}
