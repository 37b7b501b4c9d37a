/**
 * Stop with memory saved (issue 15 §1): pause the vCPUs, migrate the VM's RAM and device state
 * into a file through QEMU's own migration (`exec:cat > file`: QEMU 7.2 has no `file:` URI), then
 * quit. A completed migration has already flushed and released the disks, so the overlay is
 * consistent with the state; its identity is recorded after QEMU exited (saved-state.ts). A save
 * that fails (a device that cannot migrate, a full disk) resumes the guest and reports why: the VM
 * keeps running, nothing is lost.
 */
import { rename, rm, stat } from 'node:fs/promises';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { StopOptions, StopResult } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';
import { socketPath, vmDir, vmFile, volumePath } from '../state/paths.js';
import { reapHelpers } from './helpers.js';
import { isQemuFor, processArgv } from './liveness.js';
import { waitExit } from './process.js';
import { QmpClient } from './qmp.js';
import { identify, qemuVersion, savedPaths, seedDigest, shellQuote, writeSaved, type FileId } from './saved-state.js';
import { abortIf, liveQemu, pdir, readApplied, type QemuContext } from './context.js';
import { cleanupRuntime, stop } from './stop.js';
import { readyRecorded } from './readiness.js';
import { mountsPluggedIn } from './hotplug.js';

/** The files QEMU writes for a VM: the overlay, named volumes, the UEFI variable store. */
export function writableDisks(pd: string, vm: VmSpec): string[] {
  const out = [vmFile(pd, vm.name, 'disk')];
  for (const v of vm.volumes) if (v.kind === 'named' && !v.readOnly) out.push(volumePath(pd, v.name));
  if (vm.firmware !== 'bios') out.push(vmFile(pd, vm.name, 'efiVars'));
  return out;
}

/** The part of a QEMU process's argv tend built (buildArgv starts with -name), without -incoming. */
export function builtArgv(procArgv: readonly string[]): string[] {
  const at = procArgv.indexOf('-name');
  const a = at >= 0 ? procArgv.slice(at) : [...procArgv];
  const i = a.indexOf('-incoming');
  if (i >= 0) a.splice(i, 2);
  return a;
}

interface MigrateInfo {
  status?: string;
  'error-desc'?: string;
}

/**
 * Save the running VM's state and stop its QEMU. False when no QEMU runs (nothing to save).
 * Throws SaveFailed (the VM still runs) when QEMU could not save it.
 */
export async function saveAndStop(ctx: QemuContext, project: Project, name: string, signal?: AbortSignal): Promise<boolean> {
  abortIf(signal);
  const { env, clock, log } = ctx;
  const pd = pdir(ctx, project);
  const pidfile = vmFile(pd, name, 'pid');
  const live = await liveQemu(ctx, pidfile, name);
  if (!live) return false;
  const applied = await readApplied(ctx, project, name);
  if (!applied) throw new BackendError('SaveFailed', `${name}: cannot save its state: tend has no record of how it was started`);
  const paths = savedPaths(pd, name);
  const tmp = `${paths.state}.tmp`;
  await rm(tmp, { force: true });
  const version = await qemuVersion(ctx.binary, env);
  const t0 = clock.now();
  const qmp = await QmpClient.connect(socketPath(pd, name, 'qmp', env), { timeoutMs: 2000, ...(signal ? { signal } : {}) });
  try {
    const st = await qmp.queryStatus(2000);
    const wasRunning = st.running;
    // paused first: one pass over RAM, not a live migration chasing a running guest
    await qmp.execute('stop', undefined, { timeoutMs: 5000 });
    try {
      await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)}` }, { timeoutMs: 10_000 });
      for (;;) {
        if (signal?.aborted) {
          await qmp.execute('migrate_cancel', undefined, { timeoutMs: 5000 }).catch(() => undefined);
          throw signal.reason;
        }
        const info = await qmp.execute<MigrateInfo>('query-migrate', undefined, { timeoutMs: 5000 });
        if (info.status === 'completed') break;
        if (info.status === 'failed' || info.status === 'cancelled') {
          throw new BackendError(
            'SaveFailed',
            `${name}: QEMU could not save its state (${info['error-desc'] ?? info.status}); the VM keeps running`,
          );
        }
        await clock.sleep(50);
      }
    } catch (err) {
      await rm(tmp, { force: true });
      if (wasRunning) await qmp.execute('cont', undefined, { timeoutMs: 5000 }).catch(() => undefined);
      if (err instanceof BackendError && err.reason === 'QmpCommandFailed')
        throw new BackendError('SaveFailed', `${name}: QEMU could not save its state (${err.message}); the VM keeps running`, {
          cause: err,
        });
      throw err;
    }
    await qmp.execute('quit', undefined, { timeoutMs: 5000 }).catch(() => undefined);
  } finally {
    qmp.close();
  }
  const ours = async (): Promise<boolean> => {
    const argv = await processArgv(live.pid);
    return argv !== null && isQemuFor(argv, pidfile);
  };
  if (!(await waitExit(live.pid, 30_000, clock, ours))) {
    throw new BackendError('SaveFailed', `${name}: QEMU (pid ${live.pid}) saved its state but did not quit`);
  }
  await reapHelpers(vmDir(pd, name), vmFile(pd, name, 'helpers'), clock);
  await cleanupRuntime(ctx, pd, name);
  const bytes = (await stat(tmp)).size;
  const disks: Record<string, FileId> = {};
  for (const d of writableDisks(pd, applied.spec)) {
    const id = await identify(d);
    if (id) disks[d] = id;
  }
  await rename(tmp, paths.state);
  await writeSaved(pd, name, {
    savedAt: clock.now(),
    bytes,
    qemuVersion: version,
    argv: builtArgv(live.argv),
    disks,
    seed: await seedDigest(applied.spec.cloudInit !== null ? vmFile(pd, name, 'seed') : null),
  });
  log?.info({ vm: name }, `state saved (${Math.round(bytes / 1048576)} MiB in ${((clock.now() - t0) / 1000).toFixed(1)} s)`);
  return true;
}

/**
 * `stop` with `save`: a VM observed Ready has its state saved; any other (mid-boot: a guest saved
 * in its first boot came back without SSH) is powered off as usual, with a line saying so.
 */
export async function saveOrStop(
  ctx: QemuContext,
  project: Project,
  name: string,
  o: StopOptions,
  signal?: AbortSignal,
): Promise<StopResult> {
  const pd = pdir(ctx, project);
  const live = await liveQemu(ctx, vmFile(pd, name, 'pid'), name);
  if (!live) {
    await stop(ctx, project, name, o, signal);
    return { saved: false };
  }
  if (!(await readyRecorded(pd, name, live.pid))) {
    ctx.log?.warn(
      { vm: name },
      'not saved: it was not observed Ready in this boot (a guest saved mid-boot may not come back); powering off instead',
    );
    await stop(ctx, project, name, o, signal);
    return { saved: false };
  }
  // a saved state restores only onto the argv it ran with: a warm clone's volumes and host folders,
  // plugged in after its restore, are not in it (the next start's argv has them: that state would
  // be discarded, and the guest would have gone down without unmounting them)
  const applied = await readApplied(ctx, project, name);
  if (applied && mountsPluggedIn(applied.spec, live.argv)) {
    ctx.log?.warn(
      { vm: name },
      'not saved: its volumes and host folders were plugged in after a warm-clone restore, which a saved state cannot hold; powering off instead',
    );
    await stop(ctx, project, name, o, signal);
    return { saved: false };
  }
  return { saved: await saveAndStop(ctx, project, name, signal) };
}
