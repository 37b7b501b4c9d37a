/**
 * The `tend watch` loop: triggers → work queue → reconcile → arm. Policy only: every side effect
 * goes through injected functions, time through the injected Clock.
 *
 *   triggers   file saves (debounced, workqueue.ts), SIGHUP (`reload()`), VM exits
 *              (Backend.watchExit), the periodic resync, VMs started outside the loop (`rearm()`)
 *   queue      keys are VM names plus the triggers below; a pass takes every ready key at once
 *   reconcile  one pass at a time, inside `withLock` (the project lock, taken pass by pass):
 *              reload (watch-desired.ts), exits and failures through one retry path
 *              (retries.ts: requeue now / after a backoff / terminal), converge of the targets
 *   arm        after every pass, watch the process of every running VM (exit-arms.ts)
 *
 * A save in the middle of a pass cancels what that pass has not started yet; it is requeued and
 * reconciled from the new files. The loop ends when `signal` aborts: the pass in flight is
 * cancelled through the same signal and VMs are left running.
 */
import type { Project } from '../schemas/model.js';
import { alive, tendEvent, type Observed, type TendEvent, type VmExit } from '../schemas/ports.js';
import { ExitArms } from './exit-arms.js';
import { isMutating } from './plan.js';
import type { ConvergeResult } from './reconciler.js';
import type { PassReport, WatchController, WatchDeps, WatchOptions } from './watch-api.js';
import { DEFAULT_BACKOFF } from './restart-policy.js';
import { Retries } from './retries.js';
import { DesiredState } from './watch-desired.js';
import { WorkQueue } from './workqueue.js';
import { Session } from './watch-session.js';

export type { WatchLoad } from './watch-desired.js';

export type { PassReport, WatchController, WatchDeps, WatchOptions } from './watch-api.js';

/** Queue keys besides VM names (a VM name never starts with ":"). */
const INITIAL = ':initial';
const FILES = ':files';
const RELOAD = ':reload';
const RESYNC = ':resync';
const REARM = ':rearm';

/** Start the loop with a valid first project; the first pass converges everything. */
/** States a pass leaves a VM in with its process meant to be alive. */
const RUNNING_STATES: ReadonlySet<string> = new Set(['Ready', 'Running', 'Paused']);

/** The VMs a pass left running (its own results, and the running VMs it did not touch), with a pid. */
function leftRunning(before: Observed, result: ConvergeResult): Map<string, number> {
  const left = new Map<string, number>();
  for (const [vm, o] of Object.entries(before.vms)) if (alive(o.power) && !(vm in result.vms)) left.set(vm, o.pid ?? 0);
  for (const [vm, s] of Object.entries(result.vms)) if (RUNNING_STATES.has(s.state)) left.set(vm, before.vms[vm]?.pid ?? 0);
  return left;
}

export function startWatch(initial: Project, deps: WatchDeps, opts: WatchOptions, signal: AbortSignal): WatchController {
  const debounceMs = opts.debounceMs ?? 50;
  const emit = (type: TendEvent['type'], reason: TendEvent['reason'], vm: string | undefined, message: string): void =>
    opts.onEvent?.(tendEvent(deps.clock.now(), type, reason, vm, message));
  // a stream of saves delays a pass by at most 10 debounce periods (and at least 1 s)
  const queue = new WorkQueue<string>(deps.clock, signal, { debounceMs, maxDebounceMs: Math.max(debounceMs * 10, 1000) });
  const desired = new DesiredState(initial, deps.load, emit, opts.prune, deps.watchFiles);
  const retries = new Retries(opts.backoff ?? DEFAULT_BACKOFF, () => deps.clock.now(), emit);
  const exits = new Map<string, VmExit>();
  const runOpts = { signal, ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) };
  /** the pass holding the lock, while its converges run */
  let session: Session | null = null;
  const exited = (e: VmExit): void => {
    if (session) return session.exited(e);
    exits.set(e.vm, e);
    queue.add(e.vm);
  };
  const arms = new ExitArms(deps.backend, exited);
  /** arm the exit watchers from an observation; a VM running without a pid is looked at again soon */
  const arm = (project: Project, observed: Observed, left?: ReadonlyMap<string, number>): VmExit[] => {
    const missed = arms.arm(project, observed, left);
    const ms = arms.settleAfterMs();
    if (ms !== null) queue.addAfter(REARM, ms);
    return missed;
  };
  const saved = new Set<string>();
  /** aborted by a save: the running pass starts nothing more */
  let saving: AbortController | null = null;
  /** VMs a save cancelled: reconciled with the files' next reading */
  const deferred = new Set<string>();

  async function pass(batch: Set<string>): Promise<void> {
    const triggers: PassReport['triggers'] = [];
    const targets = new Set<string>();
    let all = batch.has(INITIAL) || batch.has(RESYNC);
    if (batch.has(INITIAL)) triggers.push('initial');
    if (batch.has(RELOAD) || batch.has(FILES)) {
      const why = batch.has(RELOAD) ? 'reload' : 'files';
      triggers.push(why);
      const files = [...saved];
      saved.clear();
      const r = await desired.reload(files, why);
      for (const vm of [...r.vms, ...r.removed]) retries.forget(vm); // a new desired state: try again
      for (const vm of [...r.vms, ...deferred]) targets.add(vm);
      deferred.clear();
      if (opts.prune && r.removed.length > 0) all = true;
    }
    if (batch.has(RESYNC)) triggers.push('resync');
    const vms = [...batch].filter((k) => !k.startsWith(':'));
    const due = vms.filter((vm) => !exits.has(vm));
    if (due.length > 0) triggers.push('backoff');
    for (const vm of due) {
      retries.release(vm);
      targets.add(vm);
    }
    if (vms.some((vm) => exits.has(vm))) triggers.push('exit');
    const project = desired.project;
    if (!all && targets.size === 0 && exits.size === 0) {
      // only a rearm: observe (read-only, no lock) and watch what runs now; nothing to converge
      const observed = batch.has(REARM) ? await deps.backend.observe(project, signal).catch(() => null) : null;
      if (observed) for (const e of arm(project, observed)) exited(e);
      return;
    }
    let report: PassReport = { triggers, names: [], result: null };
    try {
      await deps.withLock(async () => {
        saving = new AbortController();
        const observed = await deps.backend.observe(project, signal);
        retries.seen(observed.vms);
        for (const e of arm(project, observed)) exits.set(e.vm, e);
        for (const [vm, e] of exits) {
          exits.delete(vm);
          queue.forget(vm);
          const r = retries.afterExit(
            e,
            project.vms.find((v) => v.name === vm),
            observed.vms[vm],
          );
          if (r.requeueAfter === 0) targets.add(vm);
          else if (r.requeueAfter !== undefined) queue.addAfter(vm, r.requeueAfter);
        }
        const names = retries.runnable(project, all ? 'all' : targets);
        report = { triggers, names, result: null };
        if (names && names.length === 0) return;
        session = new Session({
          project,
          deps,
          flags: { recreate: opts.recreate, prune: opts.prune, provision: opts.provision },
          run: runOpts,
          cancel: saving.signal,
          retries,
          queue,
          exits,
        });
        session.launch(names, observed);
        const result = await session.done();
        session = null;
        report.result = result;
        for (const vm of result.cancelled) deferred.add(vm);
        const states = Object.entries(result.vms).map(([vm, s]) => `${vm}: ${s.state}${s.error ? ` (${s.error})` : ''}`);
        // a resync that found nothing to do stays quiet (no line every 30 s in the journal)
        const quiet = triggers.length === 1 && triggers[0] === 'resync' && result.ok && !result.entries.some(isMutating);
        if (!quiet) emit(result.ok ? 'Normal' : 'Warning', 'Reconciled', undefined, states.join(', ') || 'nothing to do');
        for (const e of arm(project, await deps.backend.observe(project, signal), leftRunning(observed, result))) exited(e);
      }, signal);
    } catch (e) {
      session = null;
      if (signal.aborted) return;
      report.error = e instanceof Error ? e : new Error(String(e));
      emit('Warning', 'ReconcileFailed', undefined, `reconcile failed: ${report.error.message}; retrying at the next change or resync`);
    }
    saving = null;
    if (report.result || report.error) opts.onPass?.(report);
  }

  async function run(): Promise<void> {
    const resyncMs = opts.resyncMs ?? 30_000;
    desired.watch();
    queue.add(INITIAL);
    for (let batch = await queue.take(); batch; batch = await queue.take()) {
      if (resyncMs > 0 && (batch.has(RESYNC) || batch.has(INITIAL))) queue.addAfter(RESYNC, resyncMs);
      await pass(batch);
    }
  }

  const done = run().finally(() => arms.close());

  return {
    filesChanged(paths) {
      if (paths.length === 0) return;
      for (const p of paths) saved.add(p);
      saving?.abort();
      queue.addDebounced(FILES);
    },
    reload: () => queue.add(RELOAD),
    vmExited: exited,
    resync: () => queue.add(RESYNC),
    rearm: () => queue.add(REARM),
    get project() {
      return desired.project;
    },
    held: retries.held,
    done,
  };
}
