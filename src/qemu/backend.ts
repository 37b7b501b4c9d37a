/**
 * The QEMU backend: every backend role of schemas/ports.ts (lifecycle, observe, exit-watch,
 * console, volumes) over the state dir, qemu-img, and detached QEMU processes. Every method is
 * idempotent: prepare twice changes nothing the second time, start of a running VM returns what
 * runs, stop of a stopped VM is a no-op.
 */
import { chmod, copyFile, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type {
  Clock,
  FullBackend,
  Observed,
  ObservedVm,
  PrepareOptions,
  StartResult,
  StopOptions,
  VolumeObserved,
} from '../../schemas/ports.js';
import { systemClock } from '../state/clock.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { resolveImage } from '../images/resolve.js';
import { createOverlay, createVolume, qemuImgInfo, resizeImage } from '../images/qemu-img.js';
import { writeSeed } from '../seed/seed.js';
import { ensureKeypair, publicKeyOf } from '../ssh/keys.js';
import { sshUser } from '../ssh/user.js';
import type { Logger } from '../log.js';
import { ensureDir, exists, FILE_MODE, readJson, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { validatePortRecord } from '../state/validators.generated.js';
import { CACHE_FILES, FILES, cacheRoot, projectDir, socketPath, vmDir, vmFile, vmsDir, volumePath, volumesDir } from '../state/paths.js';
import { chooseAccel } from './accel.js';
import { accelOf, buildArgv, type Firmware } from './argv.js';
import { checkDisplaySupport } from './display.js';
import { findOvmf } from './firmware.js';
import { findQemu, isQemuFor, processArgv } from './liveness.js';
import { pidAlive } from '../pid.js';
import { reapHelpers, recordHelper, helperEnv } from './helpers.js';
import { guestPoweroff } from './guest-poweroff.js';
import { newInstanceId, readInstanceId } from '../state/instance-id.js';
import { observeVm, validateApplied, vmFolders, type AppliedRecord, type IntentRecord } from './observe.js';
import { attachConsole } from './console.js';
import { qemuExitWatch } from './watch.js';
import { clearRecord } from '../provision/record.js';
import { allocatePorts, forwardsOf, type PortRecord } from './ports.js';
import { spawnQemu, waitExit } from './process.js';
import { qmpOnce } from './qmp.js';
import { markReady } from './readiness.js';
import { ensureProjectNet } from './project-net.js';
import { hostFolderShares, startVirtiofsd } from './volumes.js';
import { tapMac } from '../net/mac.js';
import { stageTimeoutMs, type StageTimeouts } from '../timeouts.js';

export interface QemuBackendOptions {
  stateRoot: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** default: qemu-system-x86_64 from PATH (of `env`) */
  qemuBinary?: string;
  log?: Logger;
  /** stage time limits from the command's flags (ms); `start` bounds QEMU's start until QMP answers (src/timeouts.ts) */
  timeouts?: StageTimeouts;
  /** grace after SIGTERM before SIGKILL (default 10 s) */
  termGraceMs?: number;
  /** how often exit-watch checks QEMU pids (ms, default 250) */
  exitPollMs?: number;
  /** how long a guest gets to act on ACPI powerdown before tend also asks it over SSH (default 10 s) */
  acpiPatienceMs?: number;
}

/** Default size of a named volume the project declares without one. */
const DEFAULT_VOLUME_GIB = 10;

function abortIf(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

export function createQemuBackend(opts: QemuBackendOptions): FullBackend {
  const env = opts.env ?? process.env;
  const clock = opts.clock ?? systemClock;
  const binary = opts.qemuBinary ?? 'qemu-system-x86_64';
  const log = opts.log;
  const pdir = (p: Project): string => projectDir(opts.stateRoot, p.name, p.dir);
  const file = (p: Project, vm: string, k: keyof typeof FILES): string => vmFile(pdir(p), vm, k);

  const corruptNote = (c: { path: string; error: string }): void => {
    log?.warn(`ignored a damaged state file ${c.path} (${c.error}); it is rebuilt from observation`);
  };

  async function readApplied(p: Project, vm: string): Promise<AppliedRecord | undefined> {
    return readJson<AppliedRecord>(file(p, vm, 'applied'), validateApplied, corruptNote);
  }

  /** The VM's QEMU (by pidfile, else by a /proc scan); a pidfile that did not lead to it is written again. */
  async function liveQemu(pidfile: string, vm: string): Promise<{ pid: number; argv: string[] } | null> {
    const live = await findQemu(pidfile);
    if (live?.found === 'scan') {
      log?.warn({ vm }, `found its QEMU (pid ${live.pid}) by its command line: the pidfile ${pidfile} was damaged; written again`);
      await writeFileAtomic(pidfile, `${live.pid}\n`);
    }
    return live;
  }

  async function prepare(project: Project, vm: VmSpec, o: PrepareOptions, signal?: AbortSignal): Promise<void> {
    abortIf(signal);
    const pd = pdir(project);
    const dir = vmDir(pd, vm.name);
    await ensureDir(pd);
    await ensureDir(vmsDir(pd));
    await ensureDir(dir);
    const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
    const live = await liveQemu(f('pid'), vm.name);

    if (o.recreateDisk) {
      if (live) throw new BackendError('VmRunning', `${vm.name}: cannot replace the disk of a running VM (stop it first)`);
      await rm(f('disk'), { force: true });
      await clearRecord(pd, vm.name);
      await rm(f('instanceId'), { force: true });
      await rm(f('efiVars'), { force: true });
    }

    // instance-id: created once, kept for the disk's life
    let instanceId = await readInstanceId(pd, vm.name, corruptNote);
    if (!instanceId) {
      instanceId = newInstanceId();
      await writeFileAtomic(f('instanceId'), instanceId + '\n');
    }

    let publicKey: string;
    if (vm.ssh.privateKey === null) {
      publicKey = (await ensureKeypair(dir)).publicKey;
    } else {
      const pub = await readFile(`${vm.ssh.privateKey}.pub`, 'utf8').catch(() => '');
      publicKey = pub.trim() || publicKeyOf(await readFile(vm.ssh.privateKey, 'utf8'), `tend@${vm.name}`);
    }
    abortIf(signal);

    const image = await resolveImage(opts.stateRoot, vm.image, { signal, onProgress: o.onProgress, diskGiB: vm.disk });
    abortIf(signal);
    const previous = await readApplied(project, vm.name);
    let diskImage = previous?.diskImage ?? null;
    if (!(await exists(f('disk')))) {
      o.onProgress?.(`${vm.name}: creating disk over ${image.path}`);
      await createOverlay(image, f('disk'), vm.disk);
      await clearRecord(pd, vm.name);
      diskImage = image.id;
    } else if (vm.disk !== null && !live) {
      // a running QEMU holds the disk's write lock: growth happens at the next prepare after a stop
      if (await resizeImage(f('disk'), vm.disk)) o.onProgress?.(`${vm.name}: disk grown to ${vm.disk} GiB`);
    }

    for (const v of vm.volumes) {
      if (v.kind !== 'named') continue;
      const p = volumePath(pd, v.name);
      if (await exists(p)) continue;
      await ensureDir(volumesDir(pd));
      await createVolume(p, project.volumes[v.name]?.size ?? DEFAULT_VOLUME_GIB);
    }

    if (vm.firmware !== 'bios' && !(await exists(f('efiVars')))) {
      const fw = await findOvmf(vm.firmware);
      if (!fw) throw new BackendError('FirmwareMissing', `${vm.name}: firmware ${vm.firmware} needs OVMF (apt-get install ovmf)`);
      await copyFile(fw.varsTemplate, f('efiVars'));
      await chmod(f('efiVars'), FILE_MODE); // the template's mode is world-readable
    }

    if (vm.cloudInit !== null) {
      const net = vm.network.mode === 'user' ? await ensureProjectNet(project, pd, vm.name) : null;
      await writeSeed(vm, { isoPath: f('seed'), instanceId, publicKey, user: sshUser(vm), net });
    } else {
      await rm(f('seed'), { force: true });
    }
    await writeJsonAtomic(f('applied'), { spec: vm, diskImage } satisfies AppliedRecord);
  }

  async function runningResult(project: Project, vm: string, pid: number, argv: string[]): Promise<StartResult> {
    let ports = await readJson<PortRecord>(file(project, vm, 'ports'), validatePortRecord, corruptNote);
    if (!ports) {
      // lost or damaged: what runs says which ports it forwards
      ports = forwardsOf(argv);
      await writeJsonAtomic(file(project, vm, 'ports'), ports);
    }
    const ssh = ports.ssh ? Number(ports.ssh.slice(ports.ssh.lastIndexOf(':') + 1)) : 0;
    return { pid, accel: accelOf(argv) ?? 'tcg', sshPort: ssh, ports };
  }

  async function start(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> {
    abortIf(signal);
    const pd = pdir(project);
    const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
    const live = await liveQemu(f('pid'), vm.name);
    if (live) return runningResult(project, vm.name, live.pid, live.argv);
    // no QEMU runs: whatever helper of an earlier start is still around (a crash left it) goes first
    const reaped = await reapHelpers(vmDir(pd, vm.name), f('helpers'), clock);
    if (reaped.length > 0)
      log?.warn({ vm: vm.name }, `stopped ${reaped.length} helper process(es) left by an earlier start (pid ${reaped.join(', ')})`);
    if (!(await exists(f('disk')))) throw new BackendError('VmNotPrepared', `${vm.name}: has no disk yet (prepare it first)`);

    const { accel, reason } = await chooseAccel(vm.accel, { binary, env, cacheFile: join(cacheRoot(env), CACHE_FILES.accel) });
    if (reason) log?.info({ vm: vm.name, accel }, reason);
    abortIf(signal);

    const previous = await readJson<PortRecord>(f('ports'), validatePortRecord, corruptNote);
    const user = vm.network.mode === 'user';
    // before anything is written: a video model or display protocol this QEMU lacks is a clear error
    await checkDisplaySupport(vm, binary, env);
    const alloc = await allocatePorts(vm.name, user ? vm.ports : [], previous, { needSsh: user, graphics: vm.graphics });
    await writeJsonAtomic(f('ports'), alloc.record);

    let firmware: Firmware | null = null;
    if (vm.firmware !== 'bios') {
      const fw = await findOvmf(vm.firmware);
      if (!fw) throw new BackendError('FirmwareMissing', `${vm.name}: firmware ${vm.firmware} needs OVMF (apt-get install ovmf)`);
      firmware = { code: fw.code, vars: f('efiVars'), secure: vm.firmware === 'uefi-secure' };
    }
    const qmp = socketPath(pd, vm.name, 'qmp', env);
    const serial = socketPath(pd, vm.name, 'serial', env);
    const qmpEvents = socketPath(pd, vm.name, 'qmpEvents', env);
    for (const p of [qmp, serial, qmpEvents]) await ensureDir(dirname(p));
    for (const p of [qmp, serial, qmpEvents, f('pid')]) await rm(p, { force: true });
    const volumes: Record<string, string> = {};
    for (const v of vm.volumes) if (v.kind === 'named') volumes[v.name] = volumePath(pd, v.name);
    const projectNet = vm.network.mode === 'user' ? await ensureProjectNet(project, pd, vm.name) : null;
    const hostFolders = hostFolderShares(vm, vmDir(pd, vm.name), env);
    const virtiofsd = await startVirtiofsd(vm.name, hostFolders, {
      logPath: f('virtiofsdLog'),
      env: helperEnv(env, vmDir(pd, vm.name)),
      onSpawn: (pid, socket) => recordHelper(f('helpers'), { kind: 'virtiofsd', pid, socket }),
    }).catch(async (err: unknown) => {
      await reapHelpers(vmDir(pd, vm.name), f('helpers'), clock);
      throw err;
    });
    const argv = buildArgv({
      vm,
      accel,
      paths: {
        disk: f('disk'),
        seed: vm.cloudInit !== null ? f('seed') : null,
        pidfile: f('pid'),
        qmp,
        qmpEvents,
        serial,
        consoleLog: f('consoleLog'),
        volumes,
      },
      ports: alloc.forwards,
      sshPort: alloc.sshPort,
      sshAddress: alloc.sshAddress,
      ...(alloc.graphicsPort !== undefined ? { graphicsPort: alloc.graphicsPort } : {}),
      firmware,
      projectNet,
      hostFolders,
      ...(vm.network.mode === 'tap' ? { tapMac: tapMac(pd, vm.name) } : {}),
    });
    const pid = await spawnQemu({
      binary,
      argv,
      env,
      stderrPath: f('qemuStderr'),
      qmpPath: qmp,
      clock,
      vmName: vm.name,
      timeoutMs: stageTimeoutMs('start', vm, opts.timeouts, env),
      signal,
    }).catch(async (err: unknown) => {
      if (virtiofsd.length > 0) await reapHelpers(vmDir(pd, vm.name), f('helpers'), clock);
      throw err;
    });
    const prev = await readApplied(project, vm.name);
    await writeJsonAtomic(f('applied'), { spec: vm, diskImage: prev?.diskImage ?? null } satisfies AppliedRecord);
    log?.debug({ vm: vm.name, pid, accel }, 'QEMU started');
    return { pid, accel, sshPort: user ? alloc.sshPort : vm.ssh.port, ports: alloc.record };
  }

  /**
   * Stop: ACPI powerdown over QMP; a guest that has not acted on it after a moment (stock images
   * often ignore the power button) is also asked over SSH to power off, as Vagrant's halt does;
   * then SIGTERM after the grace period, SIGKILL after termGraceMs. `o.timeout` 0 (a VM being
   * destroyed with nothing worth a clean shutdown): SIGTERM at once. Helpers go with it.
   */
  async function stop(project: Project, name: string, o: StopOptions, signal?: AbortSignal): Promise<void> {
    abortIf(signal);
    const pd = pdir(project);
    const pidfile = vmFile(pd, name, 'pid');
    const live = await liveQemu(pidfile, name);
    if (!live) {
      await reapHelpers(vmDir(pd, name), vmFile(pd, name, 'helpers'), clock);
      return;
    }
    const ours = async (): Promise<boolean> => {
      const argv = await processArgv(live.pid);
      return argv !== null && isQemuFor(argv, pidfile);
    };
    const graceMs = o.timeout * 1000;
    let delivered = graceMs > 0;
    if (delivered) {
      try {
        await qmpOnce(socketPath(pd, name, 'qmp', env), 'system_powerdown', undefined, 1000);
      } catch (err) {
        // QMP hung or gone: no ACPI request reached the guest
        delivered = false;
        log?.debug({ vm: name, err }, 'ACPI powerdown over QMP failed');
      }
    }
    const t0 = clock.now();
    const patience = Math.min(graceMs, opts.acpiPatienceMs ?? 10_000);
    let gone = await waitExit(live.pid, delivered ? patience : 0, clock, ours, signal);
    if (!gone && graceMs > 0) {
      const applied = await readApplied(project, name);
      const asked = applied
        ? await guestPoweroff(pd, applied.spec, {
            env,
            signal,
            log,
            ports: await readJson<PortRecord>(vmFile(pd, name, 'ports'), validatePortRecord),
          })
        : false;
      if (asked) log?.info({ vm: name }, 'did not act on ACPI powerdown: asked the guest to power off over SSH');
      if (asked || delivered) gone = await waitExit(live.pid, Math.max(0, graceMs - (clock.now() - t0)), clock, ours, signal);
    }
    if (!gone) {
      if (graceMs > 0) log?.info({ vm: name }, `did not power off within ${o.timeout} s: sending SIGTERM`);
      signalPid(live.pid, 'SIGTERM');
      if (!(await waitExit(live.pid, opts.termGraceMs ?? 10000, clock, ours, signal))) {
        log?.warn({ vm: name }, 'still running after SIGTERM: sending SIGKILL');
        signalPid(live.pid, 'SIGKILL');
        if (!(await waitExit(live.pid, 5000, clock, ours, signal))) {
          throw new BackendError('QemuStopFailed', `${name}: QEMU (pid ${live.pid}) survived SIGKILL`);
        }
      }
    }
    await reapHelpers(vmDir(pd, name), vmFile(pd, name, 'helpers'), clock);
    await cleanupRuntime(pd, name);
  }

  async function cleanupRuntime(pd: string, name: string): Promise<void> {
    const sockets = (['qmp', 'serial', 'qmpEvents'] as const).map((k) => socketPath(pd, name, k, env));
    for (const p of [...sockets, vmFile(pd, name, 'pid')]) {
      await unlink(p).catch(() => undefined);
    }
  }

  async function qmpCommand(project: Project, name: string, command: 'stop' | 'cont', signal?: AbortSignal): Promise<void> {
    abortIf(signal);
    const pd = pdir(project);
    const live = await liveQemu(vmFile(pd, name, 'pid'), name);
    if (!live) throw new BackendError('VmNotRunning', `${name}: is not running`);
    await qmpOnce(socketPath(pd, name, 'qmp', env), command, undefined, 2000);
  }

  return {
    async observe(project: Project, signal?: AbortSignal): Promise<Observed> {
      abortIf(signal);
      const pd = pdir(project);
      const names = await vmFolders(pd);
      const list = await Promise.all(names.map((n) => observeVm(pd, n, env)));
      const vms: Record<string, ObservedVm> = {};
      for (const o of list) {
        // a folder with nothing in it worth reporting (no disk, no process, no intent) is not a VM
        if (!o.exists && o.pid === null && o.intent === null && o.applied === null) continue;
        vms[o.name] = o;
      }
      return { vms };
    },
    prepare,
    start,
    stop,
    suspend: (p, n, s) => qmpCommand(p, n, 'stop', s),
    resume: (p, n, s) => qmpCommand(p, n, 'cont', s),
    async destroy(project: Project, name: string, signal?: AbortSignal): Promise<void> {
      const applied = await readApplied(project, name).catch(() => undefined);
      // Its disk is about to be deleted: a clean shutdown matters only for what outlives the VM
      // (named volumes, host folders). Without a record, assume it may have them.
      const keeps = !applied || applied.spec.volumes.length > 0;
      await stop(project, name, { timeout: keeps ? (applied?.spec.stopGracePeriod ?? 30) : 0 }, signal);
      await cleanupRuntime(pdir(project), name);
      await rm(vmDir(pdir(project), name), { recursive: true, force: true });
    },
    async setIntent(project: Project, name: string, intent: 'stopped' | null): Promise<void> {
      const p = file(project, name, 'intent');
      if (intent === null) await rm(p, { force: true });
      else await writeJsonAtomic(p, { intent } satisfies IntentRecord);
    },
    locate(project: Project, name: string): Record<string, string> {
      const pd = pdir(project);
      const paths: Record<string, string> = { dir: vmDir(pd, name) };
      for (const key of Object.keys(FILES) as (keyof typeof FILES)[]) {
        paths[key] = key === 'qmp' || key === 'serial' ? socketPath(pd, name, key, env) : vmFile(pd, name, key);
      }
      return paths;
    },
    watchExit: qemuExitWatch({ stateRoot: opts.stateRoot, env, ...(opts.exitPollMs ? { pollMs: opts.exitPollMs } : {}) }),
    attachConsole: (project, name, io, signal) =>
      attachConsole({ socketPath: socketPath(pdir(project), name, 'serial', env), ...io, ...(signal ? { signal } : {}) }),
    async listVolumes(project: Project, signal?: AbortSignal): Promise<VolumeObserved[]> {
      abortIf(signal);
      const dir = volumesDir(pdir(project));
      const files = await readdir(dir).catch(() => [] as string[]);
      const names = files
        .filter((f) => f.endsWith('.qcow2'))
        .map((f) => f.slice(0, -'.qcow2'.length))
        .sort();
      const out: VolumeObserved[] = [];
      for (const name of names) {
        const path = volumePath(pdir(project), name);
        const st = await stat(path).catch(() => null);
        if (!st) continue;
        const virtualSize = await qemuImgInfo(path).then(
          (i) => i.virtualSize,
          () => null,
        );
        out.push({ name, path, allocated: st.blocks * 512, virtualSize });
      }
      return out;
    },
    volumePath: (project, name) => volumePath(pdir(project), name),
    markReady: (project, name, ready) => markReady(pdir(project), name, ready),
    async removeVolumes(project: Project, names: string[], signal?: AbortSignal): Promise<void> {
      for (const n of names) {
        abortIf(signal);
        await rm(volumePath(pdir(project), n), { force: true });
      }
    },
  };
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}
