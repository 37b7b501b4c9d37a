/**
 * The QEMU backend's stop (ACPI, then SSH poweroff, then signals), the runtime files it clears,
 * and the QMP pause/resume commands.
 */
import { unlink } from 'node:fs/promises';
import type { StopOptions } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { readJson } from '../state/atomic.js';
import { validatePortRecord } from '../state/validators.generated.js';
import { socketPath, vmDir, vmFile } from '../state/paths.js';
import { pidAlive } from '../pid.js';
import { isQemuFor, processArgv } from './liveness.js';
import { reapHelpers } from './helpers.js';
import { guestPoweroff } from './guest-poweroff.js';
import type { PortRecord } from './ports.js';
import { waitExit } from './process.js';
import { qmpOnce } from './qmp.js';
import { abortIf, liveQemu, pdir, readApplied, type QemuContext } from './context.js';

/**
 * Stop: ACPI powerdown over QMP; a guest that has not acted on it after a moment (stock images
 * often ignore the power button) is also asked over SSH to power off, as Vagrant's halt does;
 * then SIGTERM after the grace period, SIGKILL after termGraceMs. `o.timeout` 0 (a VM being
 * destroyed with nothing worth a clean shutdown): SIGTERM at once. Helpers go with it.
 */
export async function stop(ctx: QemuContext, project: Project, name: string, o: StopOptions, signal?: AbortSignal): Promise<void> {
  abortIf(signal);
  const { env, clock, log } = ctx;
  const pd = pdir(ctx, project);
  const pidfile = vmFile(pd, name, 'pid');
  const live = await liveQemu(ctx, pidfile, name);
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
  const patience = Math.min(graceMs, ctx.acpiPatienceMs ?? 10_000);
  let gone = await waitExit(live.pid, delivered ? patience : 0, clock, ours, signal);
  if (!gone && graceMs > 0) {
    const applied = await readApplied(ctx, project, name);
    const asked = applied
      ? await guestPoweroff(pd, applied.spec, {
          env,
          signal,
          log,
          ports: await readJson<PortRecord>(vmFile(pd, name, 'ports'), validatePortRecord),
          project: project.name,
        })
      : false;
    if (asked) log?.info({ vm: name }, 'did not act on ACPI powerdown: asked the guest to power off over SSH');
    if (asked || delivered) gone = await waitExit(live.pid, Math.max(0, graceMs - (clock.now() - t0)), clock, ours, signal);
  }
  if (!gone) {
    if (graceMs > 0) log?.info({ vm: name }, `did not power off within ${o.timeout} s: sending SIGTERM`);
    signalPid(live.pid, 'SIGTERM');
    if (!(await waitExit(live.pid, ctx.termGraceMs ?? 10000, clock, ours, signal))) {
      log?.warn({ vm: name }, 'still running after SIGTERM: sending SIGKILL');
      signalPid(live.pid, 'SIGKILL');
      if (!(await waitExit(live.pid, 5000, clock, ours, signal))) {
        throw new BackendError('QemuStopFailed', `${name}: QEMU (pid ${live.pid}) survived SIGKILL`);
      }
    }
  }
  await reapHelpers(vmDir(pd, name), vmFile(pd, name, 'helpers'), clock);
  await cleanupRuntime(ctx, pd, name);
}

export async function cleanupRuntime(ctx: QemuContext, pd: string, name: string): Promise<void> {
  const sockets = (['qmp', 'serial', 'qmpEvents'] as const).map((k) => socketPath(pd, name, k, ctx.env));
  for (const p of [...sockets, vmFile(pd, name, 'pid')]) {
    await unlink(p).catch(() => undefined);
  }
}

export async function qmpCommand(
  ctx: QemuContext,
  project: Project,
  name: string,
  command: 'stop' | 'cont',
  signal?: AbortSignal,
): Promise<void> {
  abortIf(signal);
  const pd = pdir(ctx, project);
  const live = await liveQemu(ctx, vmFile(pd, name, 'pid'), name);
  if (!live) throw new BackendError('VmNotRunning', `${name}: is not running`);
  await qmpOnce(socketPath(pd, name, 'qmp', ctx.env), command, undefined, 2000);
}
function signalPid(pid: number, sig: NodeJS.Signals): void {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}
