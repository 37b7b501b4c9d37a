/**
 * The per-VM backend dispatcher: one Backend for the controller, behind which each VM runs on
 * the backend selected for it (select.ts): tend's own QEMU processes or a libvirt domain on some
 * connection. The controller, plan, watch and provisioning never know which.
 *
 * Routing: a command that names only a VM (stop, destroy, suspend, ...) goes to the backend that
 * holds it (its `backend.json`, record.ts; none = QEMU). prepare/start go to the selected
 * backend; a VM selected for another backend than the one holding it moves when it is not
 * running (the old one releases it, keeping the disk; the new one adopts the same files) and
 * stays where it runs otherwise. observe merges the backends' observations, each VM from the
 * backend that holds it.
 */
import type {
  Backend,
  Clock,
  ConsoleEnd,
  ConsoleIo,
  FullBackend,
  Observed,
  ObservedVm,
  PrepareOptions,
  Snapshots,
  StartResult,
  StopOptions,
  VmExit,
} from '../../schemas/ports.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError, UsageError } from '../../schemas/errors.js';
import type { Logger } from '../log.js';
import type { StageTimeouts } from '../timeouts.js';
import { projectDir, vmFile } from '../state/paths.js';
import { vmFolders } from '../qemu/observe.js';
import { liveQemu } from '../qemu/liveness.js';
import { probeSocket, isLocalUri } from '../libvirt/connect.js';
import { daemonFix } from '../libvirt/virsh.js';
import type { LibvirtBackend } from '../libvirt/backend.js';
import { readBackendRecord, readBackendRecordSync, writeBackendRecord, type BackendRecord } from './record.js';
import { wantedBackend, type BackendFlags } from './select.js';

export interface DispatchOptions {
  stateRoot: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  log?: Logger;
  timeouts?: StageTimeouts;
  flags?: BackendFlags;
  /** the QEMU backend (src/qemu/backend.ts) */
  qemu: FullBackend;
  /** a libvirt backend for a URI (default: src/libvirt/backend.ts) */
  libvirt: (uri: string) => LibvirtBackend;
}

/** The snapshot role of the backend holding a VM (QEMU and libvirt both have it). */
function snapshotsOf(b: Backend, name: string): Snapshots {
  if (!b.listSnapshots || !b.saveSnapshot || !b.restoreSnapshot || !b.removeSnapshot)
    throw new UsageError(`${name}: its backend has no snapshots: run it with backend: qemu`, 'SnapshotsUnsupported');
  return b as Snapshots;
}

export interface Dispatcher extends FullBackend, Snapshots {
  /** Which backend holds (or will run) a VM: for `tend ps` / `status`. */
  placement(project: Project, name: string): Promise<{ backend: 'qemu' | 'libvirt'; uri: string | null }>;
  close(): void;
}

type Target = { kind: 'qemu' } | { kind: 'libvirt'; uri: string };

/** "qemu" or "libvirt:<uri>": where a VM is, comparable between a record and a target. */
function key(t: Target | BackendRecord | null): string {
  if (!t) return 'qemu';
  const kind = 'kind' in t ? t.kind : t.backend;
  return kind === 'qemu' ? 'qemu' : `libvirt:${'uri' in t ? (t.uri ?? '') : ''}`;
}

export function createDispatcher(o: DispatchOptions): Dispatcher {
  const env = o.env ?? process.env;
  const flags = o.flags ?? {};
  const pdir = (p: Project): string => projectDir(o.stateRoot, p.name, p.dir);
  const libvirts = new Map<string, LibvirtBackend>();
  const lv = (uri: string): LibvirtBackend => {
    let b = libvirts.get(uri);
    if (!b) libvirts.set(uri, (b = o.libvirt(uri)));
    return b;
  };
  const probes = new Map<string, Promise<string | null>>();
  const probe = (uri: string): Promise<string | null> => {
    let p = probes.get(uri);
    if (!p) probes.set(uri, (p = probeSocket(uri, env)));
    return p;
  };

  /** The backend the VM's settings select (auto resolved: libvirt when its daemon answers). */
  async function target(project: Project, vm: VmSpec): Promise<Target> {
    const w = wantedBackend(vm, flags, env);
    const rec = await readBackendRecord(pdir(project), vm.name);
    // neither the flag nor the file chose: an existing VM stays where it is
    if (rec && (w.source === 'env' || w.source === 'default')) {
      return rec.backend === 'libvirt' && rec.uri ? { kind: 'libvirt', uri: rec.uri } : { kind: 'qemu' };
    }
    if (w.kind === 'qemu') return { kind: 'qemu' };
    if (w.kind === 'libvirt') return { kind: 'libvirt', uri: w.uri };
    // auto: where it already is, when that is libvirt on this URI; else libvirt when its socket answers
    if (rec?.backend === 'libvirt' && rec.uri === w.uri) return { kind: 'libvirt', uri: w.uri };
    if (!isLocalUri(w.uri)) return { kind: 'libvirt', uri: w.uri };
    return (await probe(w.uri)) ? { kind: 'libvirt', uri: w.uri } : { kind: 'qemu' };
  }

  async function holder(project: Project, name: string): Promise<{ rec: BackendRecord | null; backend: Backend }> {
    const rec = await readBackendRecord(pdir(project), name);
    return { rec, backend: rec?.backend === 'libvirt' && rec.uri ? lv(rec.uri) : o.qemu };
  }

  async function aliveOn(project: Project, name: string, rec: BackendRecord | null): Promise<boolean> {
    if (rec?.backend === 'libvirt' && rec.uri) {
      const obs = (await lv(rec.uri).observe(project)).vms[name];
      return obs !== undefined && obs.power !== 'stopped';
    }
    return (await liveQemu(vmFile(pdir(project), name, 'pid'))) !== null;
  }

  /** The backend prepare/start of `vm` go to, moving the VM first when it changes backend. */
  async function route(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<{ backend: Backend; t: Target }> {
    const t = await target(project, vm);
    const { rec, backend: current } = await holder(project, vm.name);
    if (rec && key(rec) !== key(t)) {
      if (await aliveOn(project, vm.name, rec)) {
        // never move a running VM: it stays until it is stopped (a restart-class change stops it first)
        const kept: Target = rec.backend === 'libvirt' && rec.uri ? { kind: 'libvirt', uri: rec.uri } : { kind: 'qemu' };
        return { backend: current, t: kept };
      }
      if (rec.backend === 'libvirt' && rec.uri) {
        o.log?.info({ vm: vm.name, from: rec.uri }, `moving ${vm.name} off libvirt (${rec.uri}): the domain is undefined, its disk kept`);
        await lv(rec.uri).release(project, vm.name, signal);
      }
    }
    return { backend: t.kind === 'qemu' ? o.qemu : lv(t.uri), t };
  }

  /** The project's VMs that mount the named volume `name`. */
  const mounting = (project: Project, name: string): VmSpec[] =>
    project.vms.filter((vm) => vm.volumes.some((v) => v.kind === 'named' && v.name === name));

  /** Where a VM's named volumes live: "local" (the state folder) or a remote host's URI (its pool). */
  const volumeHome = (t: Target): string => (t.kind === 'libvirt' && !isLocalUri(t.uri) ? t.uri : 'local');

  /** Remote libvirt URIs this project's VMs are on or selected for: where its named volumes may be. */
  async function remoteHosts(project: Project): Promise<string[]> {
    const pd = pdir(project);
    const uris = new Set<string>();
    for (const n of await vmFolders(pd)) {
      const r = await readBackendRecord(pd, n);
      if (r?.backend === 'libvirt' && r.uri && !isLocalUri(r.uri)) uris.add(r.uri);
    }
    for (const vm of project.vms) {
      const w = wantedBackend(vm, flags, env);
      if (w.kind !== 'qemu' && !isLocalUri(w.uri)) uris.add(w.uri);
    }
    return [...uris];
  }

  /** A named volume is a disk on one host: refuse a VM that would mount it on another. */
  async function checkVolumeHomes(project: Project, vm: VmSpec, t: Target): Promise<void> {
    const here = volumeHome(t);
    for (const v of vm.volumes) {
      if (v.kind !== 'named') continue;
      for (const other of mounting(project, v.name)) {
        if (other.name === vm.name) continue;
        const there = volumeHome(await target(project, other));
        if (there === here) continue;
        const at = (h: string): string => (h === 'local' ? 'this machine' : h);
        throw new BackendError(
          'VolumeOnTwoHosts',
          `${vm.name}: volume "${v.name}" would be on ${at(here)}, but ${other.name} mounts it on ${at(there)}: a named volume is a disk on one host; run both VMs on the same host or give each its own volume`,
        );
      }
    }
  }

  async function observe(project: Project, signal?: AbortSignal): Promise<Observed> {
    const pd = pdir(project);
    const recs = new Map<string, BackendRecord | null>();
    for (const n of await vmFolders(pd)) recs.set(n, await readBackendRecord(pd, n));
    const uris = new Set<string>();
    for (const r of recs.values()) if (r?.backend === 'libvirt' && r.uri) uris.add(r.uri);
    for (const vm of project.vms) {
      const w = wantedBackend(vm, flags, env);
      // a pinned libvirt is checked now (no daemon: fail at once, with the fix)
      if (w.kind === 'libvirt' && (w.source === 'flag' || w.source === 'file' || !recs.get(vm.name))) uris.add(w.uri);
    }
    const [q, ...lvs] = await Promise.all([o.qemu.observe(project, signal), ...[...uris].map((u) => observeLibvirt(u, project, signal))]);
    const vms: Record<string, ObservedVm> = {};
    for (const [n, ob] of Object.entries(q.vms)) if (recs.get(n)?.backend !== 'libvirt') vms[n] = ob;
    for (const { uri, observed } of lvs) {
      for (const [n, ob] of Object.entries(observed.vms)) {
        const r = recs.get(n);
        // a domain whose folder says it lives elsewhere is that backend's business
        if (r && key(r) !== `libvirt:${uri}`) continue;
        vms[n] = ob;
      }
    }
    return { vms };
  }

  async function observeLibvirt(uri: string, project: Project, signal?: AbortSignal): Promise<{ uri: string; observed: Observed }> {
    try {
      return { uri, observed: await lv(uri).observe(project, signal) };
    } catch (err) {
      if (err instanceof BackendError && (err.reason === 'LibvirtUnavailable' || err.reason === 'LibvirtMissing')) {
        const who = project.vms.filter((v) => wantedBackend(v, flags, env).uri === uri).map((v) => v.name);
        throw new BackendError(
          err.reason,
          `${who.length > 0 ? `${who.join(', ')}: ` : ''}backend libvirt selected but ${err.message.replace(/: (start|check).*$/, '')}: ${daemonFix(uri)}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  const byName =
    <A extends unknown[], R>(fn: (b: Backend, project: Project, name: string, ...args: A) => Promise<R>) =>
    async (project: Project, name: string, ...args: A): Promise<R> =>
      fn((await holder(project, name)).backend, project, name, ...args);

  return {
    observe,
    async prepare(project: Project, vm: VmSpec, opts: PrepareOptions, signal?: AbortSignal): Promise<void> {
      await checkVolumeHomes(project, vm, await target(project, vm));
      const { backend, t } = await route(project, vm, signal);
      await backend.prepare(project, vm, opts, signal);
      if (t.kind === 'qemu') await writeBackendRecord(pdir(project), vm.name, { backend: 'qemu' });
    },
    async start(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> {
      const { backend } = await route(project, vm, signal);
      return backend.start(project, vm, signal);
    },
    stop: byName((b, p, n, opts: StopOptions, signal?: AbortSignal) => b.stop(p, n, opts, signal)),
    suspend: byName((b, p, n, signal?: AbortSignal) => b.suspend(p, n, signal)),
    resume: byName((b, p, n, signal?: AbortSignal) => b.resume(p, n, signal)),
    destroy: byName((b, p, n, signal?: AbortSignal) => b.destroy(p, n, signal)),
    setIntent: (p, n, intent) => o.qemu.setIntent(p, n, intent),
    markReady: byName(async (b, p, n, ready: boolean) => {
      await b.markReady?.(p, n, ready);
    }),
    locate(project: Project, name: string): Record<string, string> {
      const rec = readBackendRecordSync(pdir(project), name);
      return rec?.backend === 'libvirt' && rec.uri ? lv(rec.uri).locate(project, name) : o.qemu.locate(project, name);
    },
    async attachConsole(project: Project, name: string, io: ConsoleIo, signal?: AbortSignal): Promise<ConsoleEnd> {
      const { backend } = await holder(project, name);
      if (!backend.attachConsole) throw new BackendError('Unsupported', `${name}: its backend has no console`);
      return backend.attachConsole(project, name, io, signal);
    },
    listSnapshots: byName((b, p, n, signal?: AbortSignal) => snapshotsOf(b, n).listSnapshots(p, n, signal)),
    saveSnapshot: byName((b, p, n, snap: string, signal?: AbortSignal) => snapshotsOf(b, n).saveSnapshot(p, n, snap, signal)),
    restoreSnapshot: byName((b, p, n, snap: string, signal?: AbortSignal) => snapshotsOf(b, n).restoreSnapshot(p, n, snap, signal)),
    removeSnapshot: byName((b, p, n, snap: string, signal?: AbortSignal) => snapshotsOf(b, n).removeSnapshot(p, n, snap, signal)),
    // named volumes of local backends live in the project's state folder, whoever mounts them;
    // those of VMs on a remote host live in that host's pool
    async listVolumes(project: Project, signal?: AbortSignal) {
      const lists = await Promise.all([o.qemu, ...(await remoteHosts(project)).map(lv)].map((b) => b.listVolumes(project, signal)));
      const seen = new Set<string>();
      return lists.flat().filter((v) => !seen.has(v.name) && seen.add(v.name));
    },
    volumePath(project: Project, name: string): string {
      for (const vm of mounting(project, name)) {
        const rec = readBackendRecordSync(pdir(project), vm.name);
        const w = wantedBackend(vm, flags, env);
        const uri = rec ? (rec.backend === 'libvirt' ? rec.uri : null) : w.kind !== 'qemu' ? w.uri : null;
        if (uri && !isLocalUri(uri)) return lv(uri).volumePath(project, name);
      }
      return o.qemu.volumePath(project, name);
    },
    async removeVolumes(project: Project, names: string[], signal?: AbortSignal) {
      for (const b of [o.qemu, ...(await remoteHosts(project)).map(lv)]) await b.removeVolumes(project, names, signal);
    },
    watchExit(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void {
      let off: (() => void) | null = null;
      let cancelled = false;
      void holder(project, name).then(({ backend }) => {
        if (cancelled) return;
        off = backend.watchExit ? backend.watchExit(project, name, pid, onExit) : null;
      });
      return () => {
        cancelled = true;
        off?.();
      };
    },
    async placement(project: Project, name: string) {
      const rec = await readBackendRecord(pdir(project), name);
      if (rec) return { backend: rec.backend, uri: rec.uri ?? null };
      const vm = project.vms.find((v) => v.name === name);
      const t = vm ? await target(project, vm) : ({ kind: 'qemu' } as Target);
      return t.kind === 'qemu' ? { backend: 'qemu' as const, uri: null } : { backend: 'libvirt' as const, uri: t.uri };
    },
    close() {
      for (const b of libvirts.values()) b.close();
    },
  };
}
