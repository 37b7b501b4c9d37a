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
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from 'xmlbuilder2';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import type { FullBackend, Clock, Observed, ObservedVm, PrepareOptions, StartResult, StopOptions, VmExit } from '../../schemas/ports.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { systemClock } from '../state/clock.js';
import type { Logger } from '../log.js';
import { exists, readJson, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { validateAppliedRecord, validatePortRecord } from '../state/validators.generated.js';
import { CACHE_FILES, FILES, cacheRoot, projectDir, socketPath, vmDir, vmFile, volumePath } from '../state/paths.js';
import { createQemuBackend } from '../qemu/backend.js';
import { chooseAccel } from '../qemu/accel.js';
import { findOvmf } from '../qemu/firmware.js';
import { observeVm, vmFolders } from '../qemu/observe.js';
import { allocatePorts, type PortRecord } from '../qemu/ports.js';
import { ensureProjectNet } from '../qemu/project-net.js';
import { hostFolderShares } from '../qemu/volumes.js';
import { readPidfile } from '../qemu/liveness.js';
import { pidAlive } from '../pid.js';
import { bootId, readyRecorded } from '../qemu/readiness.js';
import { createPidWatcher } from '../watch/crashes.js';
import { tapMac } from '../net/mac.js';
import { stageTimeoutMs, type StageTimeouts } from '../timeouts.js';
import { buildDomainXml, type Forward } from './domain-xml.js';
import { metadataForVirsh, readMetadata, TEND_NS, type TendMetadata } from './metadata.js';
import { domainName, domainPrefix } from './names.js';
import { createVirsh, parseDomainList, type DomainRow, type Virsh } from './virsh.js';
import { domainPidfile, isLocalUri, isSystemUri } from './connect.js';
import { probeCapabilities, type LibvirtCapabilities } from './capabilities.js';
import { createEventStream, exitKindOf, type EventStream } from './events.js';
import { readBackendRecord, writeBackendRecord } from '../backend/record.js';

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

export interface LibvirtBackend extends FullBackend {
  readonly uri: string;
  /** Undefine the domain but keep every file (the VM moves to another backend). */
  release(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  /** End the event stream and the pid watcher (tend watch's end). */
  close(): void;
}

function abortIf(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

/** libvirt's state words -> tend's power states. */
export function powerOf(state: string | undefined): ObservedVm['power'] {
  switch (state) {
    case 'running':
    case 'in shutdown':
    case 'idle':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case undefined:
    case 'shut off':
    case 'crashed':
      return 'stopped';
    default:
      return 'unknown';
  }
}

const ACTIVE = new Set(['running', 'paused', 'in shutdown', 'idle', 'pmsuspended', 'dying']);

export function createLibvirtBackend(opts: LibvirtBackendOptions): LibvirtBackend {
  const env = opts.env ?? process.env;
  const clock = opts.clock ?? systemClock;
  const log = opts.log;
  const uri = opts.uri;
  const local = isLocalUri(uri);
  const virsh: Virsh = createVirsh({ uri, env, ...(opts.virsh ? { binary: opts.virsh } : {}) });
  // disks, seed and keys are prepared exactly as for QEMU (same files, same folder)
  const files = createQemuBackend({ stateRoot: opts.stateRoot, env, clock, ...(log ? { log } : {}) });
  const pdir = (p: Project): string => projectDir(opts.stateRoot, p.name, p.dir);
  let caps: Promise<LibvirtCapabilities> | null = null;
  const capabilities = (signal?: AbortSignal): Promise<LibvirtCapabilities> =>
    (caps ??= probeCapabilities(virsh, { signal }).catch((err: unknown) => {
      caps = null;
      throw err;
    }));

  function requireLocal(what: string): void {
    if (!local) {
      throw new BackendError(
        'LibvirtRemoteUnsupported',
        `${what}: remote libvirt hosts (${uri}) are not supported yet: tend keeps disks in its local state folder; use qemu:///system or qemu:///session`,
      );
    }
  }

  async function row(dom: string, signal?: AbortSignal): Promise<DomainRow | null> {
    const out = await virsh.tryRun(['domstate', dom], { signal });
    if (out === null) return null;
    return { name: dom, state: out.split('\n')[0].trim(), id: null };
  }

  async function metadataOf(dom: string, inactive: boolean, signal?: AbortSignal): Promise<TendMetadata | null> {
    const xml = await virsh.tryRun(['dumpxml', ...(inactive ? ['--inactive'] : []), dom], { signal });
    if (xml === null) return null;
    const m = readMetadata(xml);
    return m.ok ? m.value : null;
  }

  async function qemuPid(dom: string, fallbackId: number | null): Promise<{ pid: number | null; startedAt: number | null }> {
    const pidfile = domainPidfile(uri, dom, env);
    if (!pidfile) return { pid: fallbackId, startedAt: null };
    const pid = await readPidfile(pidfile);
    if (pid === null || !pidAlive(pid)) return { pid: null, startedAt: null };
    const st = await stat(pidfile).catch(() => null);
    return { pid, startedAt: st ? st.mtimeMs : null };
  }

  async function observeOne(project: Project, name: string, r: DomainRow | undefined, signal?: AbortSignal): Promise<ObservedVm> {
    const pd = pdir(project);
    // the folder's part: disk, intent, provision record, corrupt files (no QEMU pidfile here)
    const base = await observeVm(pd, name, env);
    const dom = domainName(project, name);
    let applied: VmSpec | null = null;
    let diskImage: string | null = null;
    let ports: PortRecord = {};
    let accel: ObservedVm['accel'] = null;
    const corrupt = [...base.corrupt];
    const power = powerOf(r?.state);
    if (r) {
      const xml = await virsh.tryRun(['dumpxml', dom], { signal });
      const m = xml === null ? null : readMetadata(xml);
      if (m?.ok) {
        applied = m.value.spec;
        diskImage = m.value.diskImage;
        if (power !== 'stopped') {
          ports = m.value.ports;
          accel = m.value.accel;
        }
      } else if (m) {
        corrupt.push(`libvirt domain ${dom} (${m.why})`);
      }
    }
    const alive = power !== 'stopped';
    const { pid, startedAt } = alive ? await qemuPid(dom, r?.id ?? null) : { pid: null, startedAt: null };
    const ssh = ports.ssh ? Number(ports.ssh.slice(ports.ssh.lastIndexOf(':') + 1)) : null;
    // readiness recorded for this very QEMU process (markReady), never for a pid number alone
    const ready = alive && local && pid !== null ? await readyRecorded(pd, name, pid) : false;
    return {
      ...base,
      ready,
      power,
      pid,
      applied,
      diskImage,
      accel,
      ports,
      sshPort: ssh !== null && Number.isInteger(ssh) ? ssh : null,
      startedAt,
      corrupt: [...new Set(corrupt)],
    };
  }

  /** Domain rows of this project on this connection, by VM name. */
  async function projectDomains(project: Project, signal?: AbortSignal): Promise<Map<string, DomainRow>> {
    const prefix = domainPrefix(project);
    const rows = parseDomainList(await virsh.run(['list', '--all'], { signal }));
    const out = new Map<string, DomainRow>();
    for (const r of rows) if (r.name.startsWith(prefix)) out.set(r.name.slice(prefix.length), r);
    return out;
  }

  async function observe(project: Project, signal?: AbortSignal): Promise<Observed> {
    abortIf(signal);
    const pd = pdir(project);
    const domains = await projectDomains(project, signal);
    const mine: string[] = [];
    for (const n of await vmFolders(pd)) {
      const rec = await readBackendRecord(pd, n);
      if (rec?.backend === 'libvirt' && rec.uri === uri) mine.push(n);
    }
    const names = [...new Set([...mine, ...domains.keys()])].sort();
    const list = await Promise.all(names.map((n) => observeOne(project, n, domains.get(n), signal)));
    const vms: Record<string, ObservedVm> = {};
    for (const o of list) vms[o.name] = o;
    return { vms };
  }

  async function chooseType(vm: VmSpec): Promise<{ type: 'kvm' | 'qemu'; accel: 'kvm' | 'tcg' }> {
    const { accel, reason } = await chooseAccel(vm.accel, {
      binary: 'qemu-system-x86_64',
      env,
      cacheFile: join(cacheRoot(env), CACHE_FILES.accel),
    });
    if (reason) log?.info({ vm: vm.name, accel }, reason);
    return { type: accel === 'kvm' ? 'kvm' : 'qemu', accel };
  }

  async function define(
    project: Project,
    vm: VmSpec,
    o: { ports: PortRecord; forwards: Forward[]; accel: 'kvm' | 'tcg'; diskImage: string | null },
    signal?: AbortSignal,
  ): Promise<void> {
    const pd = pdir(project);
    const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
    const c = await capabilities(signal);
    let firmware: { code: string; varsTemplate: string } | null = null;
    if (vm.firmware !== 'bios') {
      const fw = await findOvmf(vm.firmware);
      if (!fw) throw new BackendError('FirmwareMissing', `${vm.name}: firmware ${vm.firmware} needs OVMF (apt-get install ovmf)`);
      firmware = fw;
    }
    const volumes: Record<string, string> = {};
    for (const v of vm.volumes) if (v.kind === 'named') volumes[v.name] = volumePath(pd, v.name);
    const projectNet = vm.network.mode === 'user' ? await ensureProjectNet(project, pd, vm.name) : null;
    const dom = domainName(project, vm.name);
    const uuid = await virsh.tryRun(['domuuid', dom], { signal });
    const xml = buildDomainXml({
      vm,
      domainName: dom,
      uuid,
      type: o.accel === 'kvm' ? 'kvm' : 'qemu',
      metadata: {
        project: project.name,
        projectDir: project.dir,
        vm: vm.name,
        spec: vm,
        diskImage: o.diskImage,
        ports: o.ports,
        accel: o.accel,
      },
      paths: {
        disk: f('disk'),
        seed: vm.cloudInit !== null ? f('seed') : null,
        volumes,
        serialSocket: socketPath(pd, vm.name, 'serial', env),
        consoleLog: f('consoleLog'),
        nvram: vm.firmware !== 'bios' ? f('efiVars') : null,
      },
      firmware,
      userNet: { backend: c.passt ? 'passt' : 'slirp', forwards: o.forwards },
      hostFolders: hostFolderShares(vm, vmDir(pd, vm.name), env).map((s) => ({ tag: s.tag, source: s.source })),
      projectNet,
      tapMac: vm.network.mode === 'tap' ? tapMac(pd, vm.name) : null,
      runAsRoot: isSystemUri(uri),
    });
    // the XML goes through a file (virsh cannot read a pipe as its FILE); kept for `tend status`
    const xmlPath = f('domainXml');
    await writeFileAtomic(xmlPath, xml);
    await virsh.run(['define', xmlPath], { signal });
  }

  async function prepare(project: Project, vm: VmSpec, o: PrepareOptions, signal?: AbortSignal): Promise<void> {
    requireLocal(vm.name);
    abortIf(signal);
    const pd = pdir(project);
    const dom = domainName(project, vm.name);
    const r = await row(dom, signal);
    const active = r !== null && ACTIVE.has(r.state);
    if (o.recreateDisk && active)
      throw new BackendError('VmRunning', `${vm.name}: cannot replace the disk of a running VM (stop it first)`);
    const previous = await metadataOf(dom, true, signal);
    // a running QEMU holds the disk's write lock: growth waits for the next prepare after a stop
    await files.prepare(project, active ? { ...vm, disk: null } : vm, o, signal);
    await writeBackendRecord(pd, vm.name, { backend: 'libvirt', uri, domain: dom });
    const diskImage = o.recreateDisk ? null : (previous?.diskImage ?? null);
    const applied = await readJson<{ diskImage?: string | null }>(vmFile(pd, vm.name, 'applied'), validateAppliedRecord);
    const image = applied?.diskImage ?? diskImage;
    if (active) {
      // the running domain keeps its devices; its record (live and persistent) takes the new spec
      const live = await metadataOf(dom, false, signal);
      await setMetadata(dom, { ...(live ?? previous ?? emptyMeta(project, vm)), spec: vm, diskImage: image }, signal);
      return;
    }
    const ports = previous?.ports ?? {};
    await define(project, vm, { ports, forwards: [], accel: previous?.accel ?? 'tcg', diskImage: image }, signal);
  }

  function emptyMeta(project: Project, vm: VmSpec): TendMetadata {
    return { project: project.name, projectDir: project.dir, vm: vm.name, spec: vm, diskImage: null, ports: {}, accel: 'tcg' };
  }

  async function setMetadata(dom: string, m: TendMetadata, signal?: AbortSignal): Promise<void> {
    const active = ACTIVE.has((await row(dom, signal))?.state ?? '');
    await virsh.run(['metadata', dom, TEND_NS, '--key', 'tend', '--set', metadataForVirsh(m), ...(active ? ['--live'] : []), '--config'], {
      signal,
    });
  }

  async function startResultOf(project: Project, name: string, signal?: AbortSignal): Promise<StartResult> {
    const dom = domainName(project, name);
    const m = await metadataOf(dom, false, signal);
    const { pid } = await qemuPid(dom, null);
    const ssh = m?.ports.ssh ? Number(m.ports.ssh.slice(m.ports.ssh.lastIndexOf(':') + 1)) : 0;
    return { pid: pid ?? 0, accel: m?.accel ?? 'tcg', sshPort: ssh, ports: m?.ports ?? {} };
  }

  async function start(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> {
    requireLocal(vm.name);
    abortIf(signal);
    const pd = pdir(project);
    const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
    const dom = domainName(project, vm.name);
    const r = await row(dom, signal);
    if (r && ACTIVE.has(r.state)) return startResultOf(project, vm.name, signal);
    if (!(await exists(f('disk')))) throw new BackendError('VmNotPrepared', `${vm.name}: has no disk yet (prepare it first)`);

    const { accel } = await chooseType(vm);
    abortIf(signal);
    const user = vm.network.mode === 'user';
    const previous = await readJson<PortRecord>(f('ports'), validatePortRecord, () => undefined);
    const alloc = await allocatePorts(vm.name, user ? vm.ports : [], previous, { needSsh: user });
    await writeJsonAtomic(f('ports'), alloc.record);
    const forwards: Forward[] = user
      ? [
          { protocol: 'tcp', hostAddress: alloc.sshAddress, hostPort: alloc.sshPort, guestPort: vm.ssh.port },
          ...alloc.forwards.map((p) => ({
            protocol: p.protocol,
            hostAddress: p.hostAddress,
            hostPort: p.hostPort,
            guestPort: p.guestPort,
          })),
        ]
      : [];
    const prev = await metadataOf(dom, true, signal);
    const applied = await readJson<{ diskImage?: string | null }>(f('applied'), validateAppliedRecord);
    await define(project, vm, { ports: alloc.record, forwards, accel, diskImage: applied?.diskImage ?? prev?.diskImage ?? null }, signal);
    await rm(socketPath(pd, vm.name, 'serial', env), { force: true });
    await virsh.run(['start', dom], { signal, timeoutMs: stageTimeoutMs('start', vm, opts.timeouts, env) });
    const c = await capabilities(signal);
    if (user && !c.passt) {
      try {
        await addSlirpForwards(dom, forwards, signal);
      } catch (err) {
        await virsh.tryRun(['destroy', dom]);
        throw err;
      }
    }
    const ports = { ...alloc.record };
    if (vm.graphics === 'vnc' || vm.graphics === 'spice') {
      // libvirt picked the display's port (autoport): record it where observation finds ports
      const port = await graphicsPort(dom, signal);
      if (port !== null) {
        ports[vm.graphics] = `127.0.0.1:${port}`;
        await writeJsonAtomic(f('ports'), ports);
        const live = await metadataOf(dom, false, signal);
        if (live) await setMetadata(dom, { ...live, ports }, signal);
      }
    }
    const { pid } = await qemuPid(dom, null);
    log?.debug({ vm: vm.name, pid, accel, uri }, 'libvirt domain started');
    return { pid: pid ?? 0, accel, sshPort: user ? alloc.sshPort : vm.ssh.port, ports };
  }

  /** The port of the running domain's <graphics> (VNC/SPICE), null when it has none. */
  async function graphicsPort(dom: string, signal?: AbortSignal): Promise<number | null> {
    const xml = await virsh.run(['dumpxml', dom], { signal });
    const root = create(xml).root().node as unknown as Element;
    const devices = [...root.children].find((c) => c.nodeName === 'devices');
    const g = devices ? [...devices.children].find((c) => c.nodeName === 'graphics') : undefined;
    const port = Number(g?.getAttribute('port'));
    return Number.isInteger(port) && port > 0 ? port : null;
  }

  /** The QEMU netdev id of the domain's user NIC: "host" + its device alias (libvirt's naming). */
  async function userNetdev(dom: string, signal?: AbortSignal): Promise<string> {
    const xml = await virsh.run(['dumpxml', dom], { signal });
    const root = create(xml).root().node as unknown as Element;
    const devices = [...root.children].find((c) => c.nodeName === 'devices');
    const nic = devices ? [...devices.children].find((c) => c.nodeName === 'interface' && c.getAttribute('type') === 'user') : undefined;
    const alias = nic ? [...nic.children].find((c) => c.nodeName === 'alias')?.getAttribute('name') : null;
    return `host${alias ?? 'net0'}`;
  }

  async function addSlirpForwards(dom: string, forwards: readonly Forward[], signal?: AbortSignal): Promise<void> {
    const netdev = await userNetdev(dom, signal);
    for (const fw of forwards) {
      const cmd = `hostfwd_add ${netdev} ${fw.protocol}:${fw.hostAddress}:${fw.hostPort}-:${fw.guestPort}`;
      const out = await virsh.run(['qemu-monitor-command', dom, '--hmp', cmd], { signal });
      // HMP reports failure as text, with success status
      if (out.trim() !== '') throw new BackendError('PortForwardFailed', `${dom}: ${cmd}: ${out.trim()}`);
    }
  }

  async function waitInactive(dom: string, ms: number, signal?: AbortSignal): Promise<boolean> {
    const until = clock.now() + ms;
    for (;;) {
      const r = await row(dom, signal);
      if (!r || !ACTIVE.has(r.state)) return true;
      if (clock.now() >= until) return false;
      await clock.sleep(Math.min(250, Math.max(1, until - clock.now())), signal);
    }
  }

  async function stop(project: Project, name: string, o: StopOptions, signal?: AbortSignal): Promise<void> {
    abortIf(signal);
    const dom = domainName(project, name);
    const r = await row(dom, signal);
    if (!r || !ACTIVE.has(r.state)) return;
    let delivered = true;
    if (r.state === 'paused') delivered = false;
    else {
      const sent = await virsh.tryRun(['shutdown', dom, '--mode', 'acpi'], { signal });
      if (sent === null) delivered = false;
    }
    if (!(await waitInactive(dom, delivered ? o.timeout * 1000 : 0, signal))) {
      log?.info({ vm: name }, `did not power off within ${o.timeout} s: destroying it gracefully (SIGTERM)`);
      await virsh.tryRun(['destroy', dom, '--graceful'], { signal });
      if (!(await waitInactive(dom, opts.termGraceMs ?? 10000, signal))) {
        log?.warn({ vm: name }, 'still running after SIGTERM: destroying it');
        await virsh.tryRun(['destroy', dom], { signal });
        if (!(await waitInactive(dom, 5000, signal)))
          throw new BackendError('QemuStopFailed', `${name}: domain ${dom} survived virsh destroy`);
      }
    }
  }

  async function domainCommand(project: Project, name: string, cmd: 'suspend' | 'resume', signal?: AbortSignal): Promise<void> {
    abortIf(signal);
    const dom = domainName(project, name);
    const r = await row(dom, signal);
    if (!r || !ACTIVE.has(r.state)) throw new BackendError('VmNotRunning', `${name}: is not running`);
    if (cmd === 'suspend' && r.state === 'paused') return;
    if (cmd === 'resume' && r.state !== 'paused') return;
    await virsh.run([cmd, dom], { signal });
  }

  async function undefine(dom: string, nvram: 'delete' | 'keep', signal?: AbortSignal): Promise<void> {
    if ((await row(dom, signal)) === null) return;
    await virsh.run(['undefine', dom, nvram === 'delete' ? '--nvram' : '--keep-nvram', '--managed-save', '--snapshots-metadata'], {
      signal,
    });
  }

  // exit-watch: libvirt's lifecycle events, with a pid check as the fallback for local domains
  let events: EventStream | null = null;
  const pidWatcher = createPidWatcher(opts.exitPollMs ? { pollMs: opts.exitPollMs } : {});
  function watchExit(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void {
    const dom = domainName(project, name);
    events ??= createEventStream({
      uri,
      env,
      ...(opts.virsh ? { binary: opts.virsh } : {}),
      onError: (err) => log?.warn({ err, uri }, 'libvirt event stream'),
    });
    let finished = false;
    let fallback: NodeJS.Timeout | null = null;
    const stop = (): void => {
      finished = true;
      offEvents();
      offPid();
      if (fallback) clearTimeout(fallback);
    };
    const fire = (kind: VmExit['kind']): void => {
      if (finished) return;
      stop();
      onExit({ vm: name, pid, kind });
    };
    const offEvents = events.on(dom, (e) => {
      const kind = exitKindOf(e);
      if (kind) fire(kind);
    });
    // the process is gone but no event came (stream down): a failure, after a moment for the event
    const offPid =
      local && pid > 0
        ? pidWatcher.watch(pid, () => {
            fallback = setTimeout(() => fire('failure'), 500);
            fallback.unref();
          })
        : () => undefined;
    return stop;
  }

  return {
    uri,
    observe,
    prepare,
    start,
    stop,
    suspend: (p, n, s) => domainCommand(p, n, 'suspend', s),
    resume: (p, n, s) => domainCommand(p, n, 'resume', s),
    async destroy(project: Project, name: string, signal?: AbortSignal): Promise<void> {
      const dom = domainName(project, name);
      const m = await metadataOf(dom, true, signal);
      await stop(project, name, { timeout: m?.spec.stopGracePeriod ?? 30 }, signal);
      await undefine(dom, 'delete', signal);
      await rm(vmDir(pdir(project), name), { recursive: true, force: true });
    },
    async release(project: Project, name: string, signal?: AbortSignal): Promise<void> {
      await undefine(domainName(project, name), 'keep', signal);
    },
    setIntent: (p, n, i) => files.setIntent(p, n, i),
    async markReady(project: Project, name: string, ready: boolean): Promise<void> {
      const path = vmFile(pdir(project), name, 'ready');
      const pid = ready && local ? (await qemuPid(domainName(project, name), null)).pid : null;
      const id = pid !== null ? await bootId(pid) : null;
      if (id === null) await rm(path, { force: true });
      else await writeFileAtomic(path, `${id}\n`);
    },
    locate: (p, n) => ({ ...files.locate(p, n), libvirtUri: uri, libvirtDomain: domainName(p, n) }),
    // a local domain's serial console is a unix socket at the QEMU backend's path (domain-xml.ts)
    attachConsole: (p, n, io, s) => {
      requireLocal(n);
      return files.attachConsole(p, n, io, s);
    },
    // named volumes are files in the project's state folder, whichever backend mounts them
    listVolumes: (p, s) => files.listVolumes(p, s),
    volumePath: (p, n) => files.volumePath(p, n),
    removeVolumes: (p, names, s) => files.removeVolumes(p, names, s),
    watchExit,
    close() {
      events?.close();
      events = null;
      pidWatcher.close();
    },
  };
}
