/**
 * The restart policy of a VM that exited while it was desired running (design §3, "Crashes"):
 *
 *   always      restart after any exit (crash, kill, guest poweroff)
 *   on-failure  restart only after a failure (killed, crashed); a clean exit (guest poweroff,
 *               QEMU ending normally on SIGTERM) leaves the VM stopped
 *   no          never restart
 *
 * Crash-loop backoff, per VM: the first exit restarts at once, every further exit in a row waits
 * longer (base, base·factor, base·factor², ...), capped at `maxMs`. A VM that ran `healthyMs`
 * since its last restart is healthy again: its count starts over. Pure: time comes from the caller.
 */
import type { VmSpec } from '../schemas/model.js';

export type ExitKind = 'failure' | 'clean';

export interface BackoffOptions {
  /** delay before the second restart in a row (ms) */
  baseMs: number;
  /** growth per further failure */
  factor: number;
  /** the delay never exceeds this (ms) */
  maxMs: number;
  /** running this long after a restart resets the count (ms) */
  healthyMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, factor: 2, maxMs: 60_000, healthyMs: 60_000 };

/** What the policy remembers about one VM. */
export interface RestartRecord {
  /** exits in a row (since the last healthy period) */
  failures: number;
  /** when the last restart was scheduled (ms), null before any */
  lastRestartAt: number | null;
}

export type RestartDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; why: string };

export const FRESH: RestartRecord = { failures: 0, lastRestartAt: null };

/** Delay before restart number `attempt` (1-based) of a crash loop. */
export function backoffDelay(attempt: number, o: BackoffOptions = DEFAULT_BACKOFF): number {
  if (attempt <= 1) return 0;
  return Math.min(o.maxMs, Math.round(o.baseMs * o.factor ** (attempt - 2)));
}

/**
 * Decide what to do about an exit at `now`; returns the decision and the VM's new record.
 * The record is only advanced when a restart is decided.
 */
export function decideRestart(
  policy: VmSpec['restart'],
  kind: ExitKind,
  record: RestartRecord,
  now: number,
  o: BackoffOptions = DEFAULT_BACKOFF,
): { decision: RestartDecision; record: RestartRecord } {
  if (policy === 'no') return { decision: { restart: false, why: 'restart policy is "no"' }, record };
  if (policy === 'on-failure' && kind === 'clean') {
    return { decision: { restart: false, why: 'it exited cleanly and the restart policy is "on-failure"' }, record };
  }
  const healthy = record.lastRestartAt === null || now - record.lastRestartAt >= o.healthyMs;
  const attempt = (healthy ? 0 : record.failures) + 1;
  const delayMs = backoffDelay(attempt, o);
  return { decision: { restart: true, delayMs, attempt }, record: { failures: attempt, lastRestartAt: now + delayMs } };
}

/** The records of every VM of a controller, keyed by VM name. */
export class RestartBook {
  private records = new Map<string, RestartRecord>();

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  decide(vm: string, policy: VmSpec['restart'], kind: ExitKind, now: number): RestartDecision {
    const { decision, record } = decideRestart(policy, kind, this.records.get(vm) ?? FRESH, now, this.opts);
    this.records.set(vm, record);
    return decision;
  }

  /** Forget a VM (it was removed, or the user started it by hand). */
  forget(vm: string): void {
    this.records.delete(vm);
  }

  get(vm: string): RestartRecord {
    return this.records.get(vm) ?? FRESH;
  }
}

/**
 * What one reconcile of a VM asks of the work queue (controller-runtime's `Result`): nothing
 * (it converged, or there is nothing tend can do by retrying), again after `requeueAfter` ms
 * (0: at once), or `terminal`: a fault in the project's files, not retried until they change.
 */
export interface Reconciled<S> {
  status: S;
  requeueAfter?: number;
  terminal?: boolean;
}

/** Why a VM that is desired running is down after a reconcile. */
export type DownCause = { kind: ExitKind; config: boolean };

/**
 * The one retry decision of `tend watch`, for an exit of the VM's process and for a reconcile
 * that failed alike: a config fault is terminal; otherwise the restart policy and the
 * crash-loop backoff decide between "at once", "after a delay" and "left down" (terminal).
 */
export function requeueFor(
  book: RestartBook,
  vm: string,
  policy: VmSpec['restart'],
  cause: DownCause,
  now: number,
): { requeueAfter?: number; terminal?: boolean; attempt?: number; why?: string } {
  if (cause.config) return { terminal: true, why: 'a problem in the project files: not retried until they change' };
  const d = book.decide(vm, policy, cause.kind, now);
  if (!d.restart) return { terminal: true, why: d.why };
  return { requeueAfter: d.delayMs, attempt: d.attempt };
}
