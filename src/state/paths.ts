/**
 * Where state lives. Every file name tend writes is a named constant here, and every path is
 * built by these functions, so nothing else spells a state path.
 *
 * $TEND_STATE_DIR (default $XDG_DATA_HOME/tend, i.e. ~/.local/share/tend)
 *   images/                     base images (never written after promotion) + catalog.json
 *     templates/<key>/          warm templates: frozen disk + memory state (src/qemu/templates.ts)
 *   projects/<name>-<hash>/     one folder per project (hash of its directory)
 *     project.json              name, directory and files of the project (src/state/project-record.ts)
 *     project.lock, events.jsonl
 *     vms/<vm>/                 one folder per VM: FILES below
 *     volumes/<volume>.qcow2    named volumes (outlive VMs)
 *   run/<name>/tend.yaml        the project file `tend run` writes for an ad-hoc VM
 */
import { createHash } from 'node:crypto';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const FILES = {
  disk: 'disk.qcow2',
  seed: 'seed.iso',
  privateKey: 'id_ed25519',
  publicKey: 'id_ed25519.pub',
  pid: 'qemu.pid',
  qmp: 'qmp.sock',
  /** a second QMP monitor, for a long-lived event listener (QEMU serves one client per monitor) */
  qmpEvents: 'qmp-events.sock',
  serial: 'serial.sock',
  consoleLog: 'console.log',
  qemuStderr: 'qemu.stderr.log',
  applied: 'applied.json',
  ports: 'ports.json',
  provision: 'provision.json',
  provisionLog: 'provision.log',
  knownHosts: 'known_hosts',
  instanceId: 'instance-id',
  status: 'status.json',
  intent: 'intent.json',
  /** `<pid>:<start time>` of the QEMU process last observed ready (src/qemu/readiness.ts) */
  ready: 'ready',
  efiVars: 'efi-vars.fd',
  virtiofsdLog: 'virtiofsd.log',
  /** helper processes (virtiofsd) started for the VM: src/qemu/helpers.ts */
  helpers: 'helpers.json',
  /** the VM's RAM and device state, saved by `stop --save` (src/qemu/saved-state.ts) */
  savedState: 'saved-state.bin',
  /** what the saved state belongs to: QEMU version, argv, disks (src/qemu/saved-state.ts) */
  savedRecord: 'saved.json',
  /** what a libvirt managed save belongs to: the domain XML, disks, seed (src/libvirt/managed-save.ts) */
  libvirtSaved: 'libvirt-saved.json',
  /** the guest boot (its /proc/sys/kernel/random/boot_id) cloud-init was last seen done in */
  cloudInitDone: 'cloud-init-done',
  /** which backend holds the VM (src/backend/record.ts) */
  backend: 'backend.json',
  /** the libvirt domain XML tend last defined (src/libvirt/backend.ts) */
  domainXml: 'domain.xml',
  /** a fresh disk whose first Ready may become a warm template (src/qemu/templates.ts) */
  templatePending: 'template-pending',
  /** the disk is a warm clone not started yet: which template it restores (src/qemu/clone.ts) */
  clone: 'clone.json',
  /** a libvirt warm clone's save image while `virsh restore` reads it (src/libvirt/clone.ts) */
  cloneImage: 'clone-restore.save',
  /**
   * the guest's SSH host key (ed25519, OpenSSH format), made with its fresh disk and given to
   * cloud-init in the seed (`ssh_keys`), so the first boot generates none (src/ssh/host-key.ts)
   */
  hostKey: 'ssh_host_ed25519_key',
} as const;

/** Files of one warm template, in `templateDir()` (src/qemu/templates.ts). */
export const TEMPLATE_FILES = {
  /** the source VM's disk overlay, frozen read-only (backed by the base image) */
  disk: 'disk.qcow2',
  /** RAM and device state, QEMU's migration stream */
  state: 'state.bin',
  /** what the template is (template.json) */
  record: 'template.json',
  /** a UEFI guest's variable store (NVRAM) as it was, read-only: each clone gets its own copy */
  efiVars: 'efivars.fd',
  /** the login key the template's guest authorizes (only when tend generated it) */
  privateKey: 'id_ed25519',
} as const;

/** Host-wide cache files (a property of the host, not of a project): under cacheRoot(). */
export const CACHE_FILES = {
  /** the accelerator verdict of `accel: auto`, kept for a day */
  accel: 'accel.json',
} as const;

/** $XDG_CACHE_HOME/tend (default ~/.cache/tend): things that can be thrown away and found again. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'tend');
}

export const PROJECT_FILES = {
  lock: 'project.lock',
  events: 'events.jsonl',
  /** the project's identity (name, directory, files): the host-wide index `tend ls` reads (project-record.ts) */
  record: 'project.json',
  /** project network address assignment (src/qemu/project-net.ts) */
  network: 'network.json',
  /** held by `tend watch` for its whole life: one controller per project */
  watchLock: 'watch.lock',
  /** named instances `tend up -i NAME` created (src/state/instances.ts) */
  instances: 'instances.json',
} as const;

/** Files in imagesDir(): the store's index of named images (src/images/store.ts). */
export const IMAGE_FILES = {
  index: 'catalog.json',
} as const;

/** Linux's sun_path is 108 bytes including the terminating NUL. */
export const UNIX_SOCKET_PATH_MAX = 107;

export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEND_STATE_DIR) return env.TEND_STATE_DIR;
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'tend');
}

export function shortHash(s: string, n = 8): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

export function imagesDir(root: string): string {
  return join(root, 'images');
}

/** Warm templates (issue 15 §2): one folder per template key, under the images. */
export function templatesDir(root: string): string {
  return join(imagesDir(root), 'templates');
}

export function templateDir(root: string, key: string): string {
  return join(templatesDir(root), key);
}

/** The project file of a `tend run` VM: one folder per run, named like its only VM. */
export const RUN_FILE = 'tend.yaml';

export function runsDir(root: string): string {
  return join(root, 'run');
}

export function runDir(root: string, name: string): string {
  return join(runsDir(root), name);
}

export function projectsDir(root: string): string {
  return join(root, 'projects');
}

/** One folder per project: its name plus a hash of its directory, so two checkouts never collide. */
export function projectDir(root: string, projectName: string, projectPath: string): string {
  return join(projectsDir(root), `${projectName}-${shortHash(projectPath)}`);
}

export function vmsDir(projDir: string): string {
  return join(projDir, 'vms');
}

export function vmDir(projDir: string, vm: string): string {
  return join(vmsDir(projDir), vm);
}

export function volumesDir(projDir: string): string {
  return join(projDir, 'volumes');
}

export function volumePath(projDir: string, volume: string): string {
  return join(volumesDir(projDir), `${volume}.qcow2`);
}

export function vmFile(projDir: string, vm: string, file: keyof typeof FILES): string {
  return join(vmDir(projDir, vm), FILES[file]);
}

/** The provisioning record kept with a VM's snapshot `snap` (src/qemu/snapshots.ts). */
export function snapshotProvisionFile(projDir: string, vm: string, snap: string): string {
  return join(vmDir(projDir, vm), `snapshot-${snap}.provision.json`);
}

/**
 * Path for a unix socket of a VM. When the natural path (in the VM's folder) is longer than the
 * kernel allows, the socket lives in a short per-user runtime folder named by a hash of the
 * natural path instead, so it is still unique and stable.
 */
export function socketPath(
  projDir: string,
  vm: string,
  file: 'qmp' | 'serial' | 'qmpEvents',
  env: NodeJS.ProcessEnv = process.env,
): string {
  const natural = vmFile(projDir, vm, file);
  if (Buffer.byteLength(natural) <= UNIX_SOCKET_PATH_MAX) return natural;
  return join(shortRuntimeDir(env), `${shortHash(natural, 16)}.${file === 'qmp' ? 'qmp' : file === 'serial' ? 'ser' : 'qev'}`);
}

export function shortRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const base = env.XDG_RUNTIME_DIR && Buffer.byteLength(env.XDG_RUNTIME_DIR) < 60 ? env.XDG_RUNTIME_DIR : tmpdir();
  return join(base.length < 60 ? base : '/tmp', `tend-${uid}`);
}
