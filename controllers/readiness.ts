/**
 * Readiness of a running VM, as the VM actor checks it (design §5; issue 13 items 1 and 13).
 *
 * - **Never a condition not observed.** A VM this converge did not start is Ready without an SSH
 *   round trip only when the backend observed that readiness was recorded for this very boot of
 *   it (`ObservedVm.ready`: same process, same start) and nothing is due. Otherwise the guest is
 *   waited for again. The record is withdrawn before every wait and written only after the wait
 *   succeeded, so a wait that failed, timed out, or was killed (SIGKILL of `tend up`) leaves
 *   none: the next converge checks again.
 * - **An exit ends the wait at once.** While the guest is waited for (and provisioned), the VM's
 *   process is watched (Backend.watchExit): if it ends, the step fails at once with the exit,
 *   not after the stage's time limit.
 */
import { BackendError } from '../schemas/errors.js';
import type { VmExit } from '../schemas/ports.js';
import { need, provisioningDue, type VmContext } from './vm-steps.js';

/** Why the wait ended: the VM's process is gone. */
function exitError(name: string, e: VmExit): BackendError {
  const how = e.kind === 'failure' ? 'was killed or crashed' : 'shut down';
  return new BackendError('VmExited', `${name}: its process ${how} (pid ${e.pid}) while tend waited for the guest`);
}

/**
 * Run `fn` with a signal that also aborts, with the exit as its reason, when the VM's process
 * ends. Without an exit watch it is `fn(signal)`. A VM observed running without a known process
 * (libvirt in the middle of a `virsh destroy`) is watched by name: pid 0 (ExitWatch).
 */
export async function untilExit<T>(ctx: VmContext, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const pid = ctx.started?.pid ?? ctx.observed?.pid ?? 0;
  if (!ctx.backend.watchExit) return fn(signal);
  const exited = new AbortController();
  const off = ctx.backend.watchExit(ctx.project, ctx.name, pid, (e) => exited.abort(exitError(ctx.name, e)));
  try {
    return await fn(AbortSignal.any([signal, exited.signal]));
  } catch (err) {
    if (exited.signal.aborted && !signal.aborted) throw exited.signal.reason;
    throw err;
  } finally {
    off();
  }
}

/** The Running step: is provisioning due, and is the guest ready (observed, or waited for now)? */
export async function checkReady(ctx: VmContext, signal: AbortSignal): Promise<{ due: boolean; checked: boolean }> {
  const due = await provisioningDue(ctx, signal);
  if (!ctx.startedHere && !due && ctx.observed?.ready === true) return { due, checked: false };
  const vm = need(ctx.vm, 'check readiness');
  await ctx.backend.markReady?.(ctx.project, ctx.name, false);
  // restored from a saved state by this actor: the guest's clock is behind by the time it was saved
  const restored = ctx.startedHere && ctx.started?.restored === true;
  const opts = { ...(restored ? { restored } : {}), ...(due ? { provisionNext: true } : {}) };
  await untilExit(ctx, signal, (s) => ctx.guest.waitReady(ctx.project, vm, s, Object.keys(opts).length > 0 ? opts : undefined));
  await ctx.backend.markReady?.(ctx.project, ctx.name, true);
  return { due, checked: true };
}
