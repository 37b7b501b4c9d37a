/**
 * The libvirt backend: the same contract as the QEMU backend (schemas/ports.ts), with each VM a
 * persistent libvirt domain named `tend-<project>-<hash>-<vm>` (names.ts) on one connection URI.
 *
 * Files: a local URI (qemu:///system, qemu:///session) keeps everything in the VM's own state
 * folder exactly as the QEMU backend does — the qcow2 overlay over the base image, the seed ISO,
 * keys, the per-VM UEFI variable store, the console log — so preparing the disk, seed and keys
 * is the QEMU backend's own `prepare`, and a VM can move between the two backends keeping its
 * disk. libvirt only runs it: the domain XML (domain-xml.ts) points at those files.
 *
 * Observation needs no side file: power comes from libvirt, and what the VM was defined with
 * (spec, its digest, the image its disk came from, host ports) from the domain's <metadata>.
 * The VM folder still holds what belongs to tend rather than to the domain (intent, provision
 * record, keys, instance-id) and `ports.json` for guest access (src/ssh reads it).
 *
 * User networking: `<interface type='user'>`; port forwards through passt's <portForward> where
 * this libvirt accepts it (capabilities.ts), else added to QEMU's slirp after start with
 * `virsh qemu-monitor-command --hmp hostfwd_add`, bound to 127.0.0.1 unless the file says
 * otherwise. tend never defines a libvirt network.
 *
 * The operations live in define.ts (prepare), start.ts, lifecycle.ts, observe.ts and
 * exit-watch.ts; what they share in context.ts.
 */
import { rm } from 'node:fs/promises';
import type { FullBackend, Clock, Snapshots } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import { systemClock } from '../state/clock.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../state/atomic.js';
import { vmDir, vmFile } from '../state/paths.js';
import { createQemuBackend } from '../qemu/backend.js';
import { bootId } from '../qemu/readiness.js';
import type { StageTimeouts } from '../timeouts.js';
import { domainName, remoteVolumeName } from './names.js';
import { createVirsh, type Virsh } from './virsh.js';
import { isLocalUri } from './connect.js';
import { probeCapabilities, type LibvirtCapabilities } from './capabilities.js';
import { metadataOf, pdir as pdirOf, qemuPid, type LibvirtContext } from './context.js';
import { attachRemoteConsole } from './remote-console.js';
import { observe, remoteBootId } from './observe.js';
import { prepare } from './define.js';
import { maybeKeepLibvirtTemplate } from './templates.js';
import { start } from './start.js';
import { domainCommand, stop, undefine } from './lifecycle.js';
import { discardManagedSave, saveOrStop } from './managed-save.js';
import { libvirtSnapshots } from './snapshots.js';
import { createLibvirtExitWatch } from './exit-watch.js';
import { POOL_DIR, ensurePool } from './pool.js';
import { listRemoteVolumes, removeRemoteFiles, removeRemoteVolumes } from './remote-files.js';

export { powerOf } from './observe.js';

export interface LibvirtBackendOptions {
  stateRoot: string;
  /** the connection URI (connect.ts: defaultUri) */
  uri: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  log?: Logger;
  timeouts?: StageTimeouts;
  /** grace after `virsh destroy --graceful` (SIGTERM) before a hard destroy (default 10 s) */
  termGraceMs?: number;
  /** virsh binary (default: from PATH) */
  virsh?: string;
  /** how often exit-watch checks local QEMU pids as a fallback to libvirt's events (ms, default 250) */
  exitPollMs?: number;
}

export interface LibvirtBackend extends FullBackend, Partial<Snapshots> {
  readonly uri: string;
  /** Undefine the domain but keep every file (the VM moves to another backend). */
  release(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  /** End the event stream and the pid watcher (tend watch's end). */
  close(): void;
}

export function createLibvirtBackend(opts: LibvirtBackendOptions): LibvirtBackend {
  const env = opts.env ?? process.env;
  const clock = opts.clock ?? systemClock;
  const log = opts.log;
  const uri = opts.uri;
  const local = isLocalUri(uri);
  const virsh: Virsh = createVirsh({ uri, env, ...(opts.virsh ? { binary: opts.virsh } : {}) });
  // disks, seed and keys are prepared exactly as for QEMU (same files, same folder)
  // a remote host keeps the VM's named volumes (remote-files.ts) and UEFI variables (domain-xml.ts)
  const files = createQemuBackend({
    stateRoot: opts.stateRoot,
    env,
    clock,
    runsElsewhere: !local,
    libvirtUri: uri,
    ...(log ? { log } : {}),
  });
  let caps: Promise<LibvirtCapabilities> | null = null;
  const capabilities = (signal?: AbortSignal): Promise<LibvirtCapabilities> =>
    (caps ??= probeCapabilities(virsh, { signal }).catch((err: unknown) => {
      caps = null;
      throw err;
    }));
  let pool: Promise<string> | null = null;
  const poolDir = (signal?: AbortSignal): Promise<string> =>
    (pool ??= ensurePool(virsh, signal).catch((err: unknown) => {
      pool = null;
      throw err;
    }));
  const ctx: LibvirtContext = {
    poolDir,
    stateRoot: opts.stateRoot,
    uri,
    local,
    env,
    clock,
    log,
    virsh,
    files,
    timeouts: opts.timeouts,
    termGraceMs: opts.termGraceMs,
    capabilities,
  };
  const pdir = (p: Project): string => pdirOf(ctx, p);
  const exitWatch = createLibvirtExitWatch(ctx, {
    ...(opts.virsh ? { virshBinary: opts.virsh } : {}),
    ...(opts.exitPollMs ? { exitPollMs: opts.exitPollMs } : {}),
  });

  return {
    uri,
    observe: (p, s) => observe(ctx, p, s),
    prepare: (p, vm, o, s) => prepare(ctx, p, vm, o, s),
    start: (p, vm, s) => start(ctx, p, vm, s),
    // with save: `virsh managedsave` (managed-save.ts); the next start restores it when still valid
    stop: (p, n, o, s) => (o.save ? saveOrStop(ctx, p, n, o, s) : stop(ctx, p, n, o, s)),
    suspend: (p, n, s) => domainCommand(ctx, p, n, 'suspend', s),
    resume: (p, n, s) => domainCommand(ctx, p, n, 'resume', s),
    async destroy(project: Project, name: string, signal?: AbortSignal): Promise<void> {
      const dom = domainName(project, name);
      const m = await metadataOf(ctx, dom, true, signal);
      await stop(ctx, project, name, { timeout: m?.spec.stopGracePeriod ?? 30 }, signal);
      await undefine(ctx, dom, 'delete', signal);
      // a remote host: the VM's volumes in the pool go too (the shared base stays)
      if (!local) await removeRemoteFiles(virsh, dom, signal);
      await rm(vmDir(pdir(project), name), { recursive: true, force: true });
    },
    async release(project: Project, name: string, signal?: AbortSignal): Promise<void> {
      const dom = domainName(project, name);
      // libvirt's state file goes with the domain: the other backend boots the VM
      if (/\(saved\)/.test((await virsh.tryRun(['domstate', '--reason', dom], { signal })) ?? '')) {
        log?.warn({ vm: name }, 'saved state discarded: the VM moves to another backend; booting with its disk kept');
        await discardManagedSave(ctx, pdir(project), name, dom, signal);
      }
      await undefine(ctx, dom, 'keep', signal);
    },
    setIntent: (p, n, i) => files.setIntent(p, n, i),
    async markReady(project: Project, name: string, ready: boolean): Promise<void> {
      const path = vmFile(pdir(project), name, 'ready');
      const dom = domainName(project, name);
      let id: string | null = null;
      if (ready && local) {
        const pid = (await qemuPid(ctx, dom, null)).pid;
        id = pid !== null ? await bootId(pid) : null;
      } else if (ready) {
        // another host's process is not ours to see: the domain's id, new at each start
        const domid = await virsh.tryRun(['domid', dom]);
        id = domid && /^\d+$/.test(domid) ? remoteBootId(uri, Number(domid)) : null;
      }
      if (id === null) await rm(path, { force: true });
      else await writeFileAtomic(path, `${id}\n`);
      // the first Ready of a fresh disk of a `warm` VM becomes a warm template (templates.ts)
      if (ready) await maybeKeepLibvirtTemplate(ctx, project, name);
    },
    locate: (p, n) => ({ ...files.locate(p, n), libvirtUri: uri, libvirtDomain: domainName(p, n) }),
    // a local domain's serial console is a unix socket at the QEMU backend's path (domain-xml.ts);
    // a remote one's is a pty on its host, reached with virsh console over SSH (remote-console.ts)
    attachConsole: (p, n, io, s) =>
      local ? files.attachConsole(p, n, io, s) : attachRemoteConsole(uri, domainName(p, n), io, { env, ...(s ? { signal: s } : {}) }),
    // named volumes: files in the project's state folder on this host, volumes of the pool on another
    listVolumes: (p, s) => (local ? files.listVolumes(p, s) : listRemoteVolumes(virsh, p, s)),
    volumePath: (p, n) => (local ? files.volumePath(p, n) : `${uri} ${POOL_DIR}/${remoteVolumeName(p, n)}`),
    removeVolumes: (p, names, s) => (local ? files.removeVolumes(p, names, s) : removeRemoteVolumes(virsh, p, names, s)),
    watchExit: exitWatch.watchExit,
    close: exitWatch.close,
    // qcow2 internal snapshots, as on QEMU, with QMP through libvirt's monitor (snapshots.ts)
    ...libvirtSnapshots(ctx),
  };
}
