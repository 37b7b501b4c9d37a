/**
 * The QEMU backend's start: accelerator, host ports, firmware, sockets, virtiofsd helpers, then a
 * detached QEMU. Start of a running VM returns what runs.
 */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { StartResult } from '../../schemas/ports.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { ensureDir, exists, readJson, writeJsonAtomic } from '../state/atomic.js';
import { validatePortRecord } from '../state/validators.generated.js';
import { CACHE_FILES, FILES, TEMPLATE_FILES, cacheRoot, socketPath, templateDir, vmDir, vmFile, volumePath } from '../state/paths.js';
import { tapMac } from '../net/mac.js';
import { stageTimeoutMs } from '../timeouts.js';
import { decideAccel } from './accel.js';
import { accelOf, buildArgv, type Firmware } from './argv.js';
import { checkDisplaySupport } from './display.js';
import { findOvmf } from './firmware.js';
import { reapHelpers, recordHelper, helperEnv } from './helpers.js';
import type { AppliedRecord } from './observe.js';
import { allocatePorts, forwardsOf, type PortRecord } from './ports.js';
import { spawnQemu, type SpawnOptions } from './process.js';
import { discardSaved, invalidReason, qemuVersion, readSaved, savedPaths, seedDigest, shellQuote } from './saved-state.js';
import { writableDisks } from './save.js';
import { abandonClone, cloneToRestore, makeIdentityOwn } from './clone.js';
import { hasTapMgmt } from './template-key.js';
import { setNicLink, setNicLinkAt, TAP_NETDEV } from './nic-link.js';
import type { QmpClient } from './qmp.js';
import { stop } from './stop.js';
import { ensureProjectNet, PROJECT_NETDEV } from './project-net.js';
import { hostFolderShares, startVirtiofsd } from './volumes.js';
import { plugMounts } from './plug-mounts.js';
import { abortIf, corruptNote, file, liveQemu, pdir, readApplied, type QemuContext } from './context.js';

async function runningResult(ctx: QemuContext, project: Project, vm: string, pid: number, argv: string[]): Promise<StartResult> {
  let ports = await readJson<PortRecord>(file(ctx, project, vm, 'ports'), validatePortRecord, corruptNote(ctx));
  if (!ports) {
    // lost or damaged: what runs says which ports it forwards
    ports = forwardsOf(argv);
    await writeJsonAtomic(file(ctx, project, vm, 'ports'), ports);
  }
  const ssh = ports.ssh ? Number(ports.ssh.slice(ports.ssh.lastIndexOf(':') + 1)) : 0;
  return { pid, accel: accelOf(argv) ?? 'tcg', sshPort: ssh, ports };
}

export async function start(ctx: QemuContext, project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> {
  abortIf(signal);
  const { env, clock, binary, log } = ctx;
  const pd = pdir(ctx, project);
  const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
  const live = await liveQemu(ctx, f('pid'), vm.name);
  if (live) return runningResult(ctx, project, vm.name, live.pid, live.argv);
  // no QEMU runs: whatever helper of an earlier start is still around (a crash left it) goes first
  const reaped = await reapHelpers(vmDir(pd, vm.name), f('helpers'), clock);
  if (reaped.length > 0)
    log?.warn({ vm: vm.name }, `stopped ${reaped.length} helper process(es) left by an earlier start (pid ${reaped.join(', ')})`);
  if (!(await exists(f('disk')))) throw new BackendError('VmNotPrepared', `${vm.name}: has no disk yet (prepare it first)`);

  const {
    choice: { accel, reason },
    probed,
  } = await decideAccel(vm.accel, { binary, env, cacheFile: join(cacheRoot(env), CACHE_FILES.accel) });
  // said once, when found out (the verdict is cached for a day): not at every start
  if (reason) log?.[probed ? 'info' : 'debug']({ vm: vm.name, accel }, reason);
  abortIf(signal);

  const previous = await readJson<PortRecord>(f('ports'), validatePortRecord, corruptNote(ctx));
  const user = vm.network.mode === 'user';
  // a warm VM on TAP: an SSH forward on its management NIC, for a clone's identity step (src/net/tap-mgmt.ts)
  const tapMgmt = hasTapMgmt(vm);
  // before anything is written: a video model or display protocol this QEMU lacks is a clear error
  await checkDisplaySupport(vm, binary, env);
  const alloc = await allocatePorts(vm.name, user ? vm.ports : [], previous, { needSsh: user || tapMgmt, graphics: vm.graphics });
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
  const startHelpers = (): Promise<number[]> =>
    startVirtiofsd(vm.name, hostFolders, {
      logPath: f('virtiofsdLog'),
      env: helperEnv(env, vmDir(pd, vm.name)),
      onSpawn: (pid, socket) => recordHelper(f('helpers'), { kind: 'virtiofsd', pid, socket }),
    }).catch(async (err: unknown) => {
      await reapHelpers(vmDir(pd, vm.name), f('helpers'), clock);
      throw err;
    });
  let virtiofsd = await startHelpers();
  const argvInput: Parameters<typeof buildArgv>[0] = {
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
    ...(vm.network.mode === 'tap' ? { tapMac: tapMac(pd, vm.name), tapMgmt } : {}),
  };
  const argv = buildArgv(argvInput);
  const spawn = (a: string[], incoming = false, hooks: Pick<SpawnOptions, 'beforeCont' | 'deferred'> = {}): Promise<number> =>
    spawnQemu({
      binary,
      argv: a,
      incoming,
      ...hooks,
      env,
      stderrPath: f('qemuStderr'),
      qmpPath: qmp,
      clock,
      vmName: vm.name,
      timeoutMs: stageTimeoutMs('start', vm, ctx.timeouts, env),
      signal,
    });
  let pid: number | null = null;
  let restored = false;
  try {
    // a warm clone not started yet restores its template's memory, then makes its identity its own
    // (on an argv without its volumes and host folders: they are plugged in after the restore)
    const cloneArgv = vm.volumes.length > 0 ? buildArgv({ ...argvInput, mountsLater: true }) : argv;
    const template = await cloneToRestore(ctx, pd, vm, cloneArgv);
    if (template) {
      const statePath = join(templateDir(ctx.stateRoot, template.key), TEMPLATE_FILES.state);
      try {
        // the NIC that has the template's MAC and address on a shared segment is down from before
        // the load until the identity step made them its own: a TAP clone's (off the bridge) and a
        // project-network clone's (the template's own VM may run on either)
        const netdev = tapMgmt ? TAP_NETDEV : projectNet ? PROJECT_NETDEV : null;
        const linkDown = netdev ? (c: QmpClient) => setNicLink(c, netdev, false) : undefined;
        pid = await spawn([...cloneArgv, '-incoming', 'defer'], true, {
          deferred: { uri: `exec:cat ${shellQuote(statePath)}`, ...(linkDown ? { beforeLoad: linkDown } : {}) },
          // again once loaded: virtio-net's post-load sets the NIC's link from the migrated state
          ...(linkDown ? { beforeCont: linkDown } : {}),
        });
      } catch (err) {
        if (signal?.aborted) throw err;
        await abandonClone(ctx, pd, vm, `QEMU could not restore its template (${(err as Error).message.split('\n')[0]})`);
      }
      if (pid !== null) {
        log?.debug({ vm: vm.name }, 'template memory restored');
        try {
          const tap = tapMgmt ? { mac: tapMac(pd, vm.name), linkUp: () => setNicLinkAt(qmp, TAP_NETDEV, true) } : null;
          await makeIdentityOwn(ctx, project, pd, vm, template, alloc.sshPort, projectNet, signal, tap);
          restored = true;
        } catch (err) {
          // never leave a guest with the template's identity running
          await stop(ctx, project, vm.name, { timeout: 0 }).catch(() => undefined);
          await abandonClone(ctx, pd, vm, (err as Error).message);
          throw err;
        }
        try {
          if (projectNet) await projectLinkUp(ctx, qmp, vm.name);
          await plugMounts(ctx, project, pd, vm, { volumes, shares: hostFolders, sshPort: alloc.sshPort, ...(signal ? { signal } : {}) });
        } catch (err) {
          if (signal?.aborted) throw err;
          // the disk is the VM's own now: a cold boot gets its project link and its volumes from
          // its argv, as any VM's
          log?.warn({ vm: vm.name }, `${(err as Error).message}; restarting it cold${vm.volumes.length > 0 ? ' with them' : ''}`);
          await stop(ctx, project, vm.name, { timeout: vm.stopGracePeriod });
          virtiofsd = await startHelpers();
          pid = null;
          restored = false;
        }
      }
    }
    // a saved state (stop --save) is restored instead of booting, when it is still valid for this argv
    const state = pid === null ? await usableSavedState(ctx, pd, vm, argv) : null;
    if (state) {
      try {
        pid = await spawn([...argv, '-incoming', `exec:cat ${shellQuote(state)}`], true);
        restored = true;
      } catch (err) {
        if (signal?.aborted) throw err;
        log?.warn({ vm: vm.name }, `saved state discarded: QEMU could not restore it (${(err as Error).message.split('\n')[0]}); booting`);
      }
      // used once: from now on the disk moves on without it
      await discardSaved(pd, vm.name);
    }
    pid ??= await spawn(argv);
  } catch (err) {
    if (virtiofsd.length > 0) await reapHelpers(vmDir(pd, vm.name), f('helpers'), clock);
    throw err;
  }
  const prev = await readApplied(ctx, project, vm.name);
  await writeJsonAtomic(f('applied'), { spec: vm, diskImage: prev?.diskImage ?? null } satisfies AppliedRecord);
  log?.debug({ vm: vm.name, pid, accel, restored }, 'QEMU started');
  return { pid, accel, sshPort: user ? alloc.sshPort : vm.ssh.port, ports: alloc.record, ...(restored ? { restored } : {}) };
}

/**
 * The VM's saved state when it is valid for `argv` (saved-state.ts), else null; an invalid one is
 * discarded with one line saying why.
 */
async function usableSavedState(ctx: QemuContext, pd: string, vm: VmSpec, argv: string[]): Promise<string | null> {
  const rec = await readSaved(pd, vm.name, corruptNote(ctx));
  const paths = savedPaths(pd, vm.name);
  if (!rec) {
    // a state without its record (or with a damaged one) is never used
    await discardSaved(pd, vm.name);
    return null;
  }
  const why = await invalidReason(rec, paths.state, {
    qemuVersion: await qemuVersion(ctx.binary, ctx.env),
    argv,
    disks: writableDisks(pd, vm),
    seed: await seedDigest(vm.cloudInit !== null ? vmFile(pd, vm.name, 'seed') : null),
  });
  if (why === null) return paths.state;
  ctx.log?.warn({ vm: vm.name }, `saved state discarded: ${why}; booting with its disk kept`);
  await discardSaved(pd, vm.name);
  return null;
}

/** A project-network clone's link up again, its MAC and address its own (see the restore in start). */
async function projectLinkUp(ctx: QemuContext, qmp: string, vm: string): Promise<void> {
  await setNicLinkAt(qmp, PROJECT_NETDEV, true).catch((err: unknown) => {
    throw new BackendError('CloneFailed', `${vm}: QEMU refused to bring the project link up (${(err as Error).message})`, { cause: err });
  });
  ctx.log?.debug({ vm }, 'project link up: the clone answers on its own MAC and address');
}
