/**
 * The `tend watch` loop (policy only: every side effect goes through injected functions).
 *
 * Triggers, merged into passes that run one at a time:
 *   - file changes (debounced): reload, keep the last valid project when the new one is invalid,
 *     reconcile only the VMs the change affects (affected.ts)
 *   - SIGHUP (`reload()`): reload and reconcile what changed
 *   - VM exits (Backend.watchExit): the restart policy (restart-policy.ts) decides; restarts run
 *     at once or after a crash-loop backoff, a VM the policy leaves down is "held" and skipped by
 *     later passes until it is seen running again (e.g. `tend start web`) or its spec changes
 *   - the periodic resync: a full converge, which also notices exits the events missed
 *   - a VM started by someone else (`tend start web`, `tend up` between passes; `rearm()`): its
 *     process is watched from then on, without waiting for the next resync
 *
 * Each mutating pass runs inside `withLock` (the project lock taken pass by pass), so one-shot
 * commands get the lock between passes. The loop ends when `signal` aborts: the pass in flight is
 * cancelled through the same signal and VMs are left running.
 */
import type { Project } from '../schemas/model.js';
import type { Diagnostic } from '../schemas/diagnostic.js';
import { formatDiagnostic } from '../schemas/diagnostic.js';
import { affectedVms, dependentsOf, watchedPaths } from './affected.js';
import { isMutating } from './plan.js';
import { converge, type ControllerDeps, type ConvergeResult } from './reconciler.js';
import { DEFAULT_BACKOFF, RestartBook, type BackoffOptions } from './restart-policy.js';
import type { Observed, TendEvent, VmExit } from '../schemas/ports.js';

export interface WatchLoad {
  project: Project | null;
  diagnostics: Diagnostic[];
}

export interface WatchDeps extends ControllerDeps {
  /** read the project files again */
  load(): WatchLoad | Promise<WatchLoad>;
  /** run `fn` holding the project lock; the lock is released before this settles */
  withLock<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T>;
  /** (re)point the file watcher at these paths (called after every valid load) */
  watchFiles?(paths: string[]): void;
}

export interface WatchOptions {
  /** quiet time after the last file event before a pass (ms); default 50 */
  debounceMs?: number;
  /** periodic full converge (ms); default 30 s; 0 disables it */
  resyncMs?: number;
  prune: boolean;
  recreate: boolean;
  provision: boolean;
  backoff?: BackoffOptions;
  onEvent?: (e: TendEvent) => void;
  /** after every pass that ran converge (tests, bench) */
  onPass?: (p: PassReport) => void;
}

export interface PassReport {
  /** why the pass ran */
  triggers: ('files' | 'reload' | 'resync' | 'exit' | 'backoff' | 'initial')[];
  /** VMs given to converge; undefined = all (orphans included) */
  names: string[] | undefined;
  result: ConvergeResult | null;
  error?: Error;
}

export interface WatchController {
  /** project files (or files they reference) changed: absolute paths */
  filesChanged(paths: readonly string[]): void;
  /** read the project files again (SIGHUP) */
  reload(): void;
  /** a VM's process ended */
  vmExited(e: VmExit): void;
  /** run a full pass now */
  resync(): void;
  /** a VM may have been started outside the loop: watch the processes of the running VMs */
  rearm(): void;
  /** the last valid project */
  readonly project: Project;
  /** VMs the restart policy leaves down (or in backoff), with why */
  readonly held: ReadonlyMap<string, string>;
  /** settles when the loop has ended (after `signal` aborted) and nothing is in flight */
  readonly done: Promise<void>;
}

interface Pending {
  files: Set<string>;
  reload: boolean;
  resync: boolean;
  exits: VmExit[];
  due: Set<string>;
  initial: boolean;
  rearm: boolean;
}

/** a stream of saves delays a pass by at most this many debounce periods (and at least 1 s) */
const MAX_DEBOUNCE_FACTOR = 10;

const empty = (): Pending => ({ files: new Set(), reload: false, resync: false, exits: [], due: new Set(), initial: false, rearm: false });

const alive = (p: string | undefined): boolean => p === 'running' || p === 'paused' || p === 'unknown';

/** Start the loop with a valid first project; the first pass converges everything. */
export function startWatch(initial: Project, deps: WatchDeps, opts: WatchOptions, signal: AbortSignal): WatchController {
  const debounceMs = opts.debounceMs ?? 50;
  const resyncMs = opts.resyncMs ?? 30_000;
  const book = new RestartBook(opts.backoff ?? DEFAULT_BACKOFF);
  const held = new Map<string, string>();
  const armed = new Map<string, { pid: number; off: () => void }>();
  let project = initial;
  let invalid = false;
  let pending = empty();
  pending.initial = true;
  let lastFileEventAt = 0;
  let firstFileEventAt: number | null = null;
  let wake: (() => void) | null = null;
  const timers = new Set<Promise<unknown>>();

  const emit = (type: TendEvent['type'], reason: string, vm: string | undefined, message: string): void => {
    opts.onEvent?.({ time: new Date(deps.clock.now()).toISOString(), type, reason, ...(vm ? { vm } : {}), message });
  };
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const hasWork = (p: Pending): boolean =>
    p.initial || p.reload || p.resync || p.rearm || p.files.size > 0 || p.exits.length > 0 || p.due.size > 0;

  /** Sleep on the injected clock; false when the loop is ending. */
  const sleep = async (ms: number): Promise<boolean> => {
    try {
      await deps.clock.sleep(ms, signal);
      return true;
    } catch {
      return false;
    }
  };
  const background = (p: Promise<unknown>): void => {
    const t = p.catch(() => undefined).finally(() => timers.delete(t));
    timers.add(t);
  };

  // ---- the pass --------------------------------------------------------------------------------

  async function reloadProject(files: ReadonlySet<string>, why: 'files' | 'reload'): Promise<{ vms: Set<string>; all: boolean }> {
    const projectFiles = new Set(project.files);
    const touchesProject = why === 'reload' || [...files].some((f) => projectFiles.has(f));
    if (!touchesProject) {
      // only content a VM references changed (a script, user-data, an upload, an image)
      const a = affectedVms(project, project, [...files]);
      if (a.vms.length > 0) emit('Normal', 'FilesChanged', undefined, `${[...files].join(', ')} changed: reconciling ${a.vms.join(', ')}`);
      return { vms: new Set(a.vms), all: false };
    }
    const r = await deps.load();
    if (!r.project) {
      invalid = true;
      const errors = r.diagnostics.filter((d) => d.severity === 'error');
      const missing = errors.filter((d) => d.message === 'the file does not exist');
      if (missing.length > 0 && missing.length === errors.length) {
        emit(
          'Warning',
          'ProjectFileMissing',
          undefined,
          `${missing.map((d) => d.file).join(', ')} no longer exist${missing.length === 1 ? 's' : ''}: the last valid desired state stays in force (no VM is deleted)`,
        );
      } else {
        emit(
          'Warning',
          'ProjectInvalid',
          undefined,
          `the project files are invalid; the last valid desired state stays in force until they are fixed:\n${errors.map(formatDiagnostic).join('\n')}`,
        );
      }
      return { vms: new Set(), all: false };
    }
    if (invalid) emit('Normal', 'ProjectValid', undefined, 'the project files are valid again');
    invalid = false;
    const a = affectedVms(project, r.project, [...files]);
    project = r.project;
    deps.watchFiles?.(watchedPaths(project));
    for (const vm of a.vms) {
      // a new desired state for a VM the policy left down is a reason to try again
      held.delete(vm);
      book.forget(vm);
    }
    for (const vm of a.removed) {
      held.delete(vm);
      book.forget(vm);
      emit(
        'Warning',
        'Orphaned',
        vm,
        opts.prune ? 'no longer declared: it is pruned (--prune)' : 'no longer declared: left as it is (pass --prune to delete it)',
      );
    }
    if (a.vms.length > 0 || a.removed.length > 0) {
      emit(
        'Normal',
        'FilesChanged',
        undefined,
        `${why === 'reload' ? 'reloaded' : [...files].join(', ') + ' changed'}: reconciling ${a.vms.join(', ') || 'nothing'}`,
      );
    }
    return { vms: new Set(a.vms), all: opts.prune && a.removed.length > 0 };
  }

  /** Decide about each exit from a fresh observation. Returns the VMs to restart now. */
  function handleExits(exits: VmExit[], observed: Observed): string[] {
    const now: string[] = [];
    for (const e of exits) {
      const obs = observed.vms[e.vm];
      const spec = project.vms.find((v) => v.name === e.vm);
      if (alive(obs?.power)) continue; // started again already (by us or by a one-shot command)
      if (!spec || spec.runState === 'stopped' || obs?.intent === 'stopped') continue; // a deliberate stop
      const how = e.kind === 'failure' ? 'was killed or crashed' : 'shut down';
      const d = book.decide(e.vm, spec.restart, e.kind, deps.clock.now());
      if (!d.restart) {
        held.set(e.vm, `left stopped: ${d.why}`);
        emit(e.kind === 'failure' ? 'Warning' : 'Normal', 'VmExited', e.vm, `${how} (pid ${e.pid}); not restarted: ${d.why}`);
        continue;
      }
      if (d.delayMs === 0) {
        emit('Warning', 'VmExited', e.vm, `${how} (pid ${e.pid}); restarting (restart policy "${spec.restart}")`);
        now.push(e.vm);
        continue;
      }
      held.set(e.vm, `crash loop: restart ${d.attempt} in ${Math.round(d.delayMs / 1000)}s`);
      emit(
        'Warning',
        'BackOff',
        e.vm,
        `${how} (pid ${e.pid}), exit ${d.attempt} in a row: restarting in ${Math.round(d.delayMs / 100) / 10}s`,
      );
      background(
        deps.clock.sleep(d.delayMs, signal).then(() => {
          pending.due.add(e.vm);
          poke();
        }),
      );
    }
    return now;
  }

  /**
   * A VM that failed to come up while desired running is retried like a crash: the restart
   * policy and the crash-loop backoff apply (so a QEMU that dies during start is not retried in
   * a tight loop, nor left down until the next resync).
   */
  function retryFailed(result: ConvergeResult, observed: Observed): void {
    for (const [vm, s] of Object.entries(result.vms)) {
      if (s.state !== 'Failed' || held.has(vm) || alive(observed.vms[vm]?.power)) continue;
      const spec = project.vms.find((v) => v.name === vm);
      if (!spec || spec.runState === 'stopped' || observed.vms[vm]?.intent === 'stopped') continue;
      const d = book.decide(vm, spec.restart, 'failure', deps.clock.now());
      if (!d.restart) {
        held.set(vm, `left stopped: ${d.why}`);
        continue;
      }
      held.set(vm, `retry ${d.attempt} in ${Math.round(d.delayMs / 1000)}s`);
      const when = d.delayMs === 0 ? 'retrying now' : `retrying in ${Math.round(d.delayMs / 100) / 10}s`;
      emit('Warning', 'BackOff', vm, `failed (${s.error ?? 'unknown error'}), failure ${d.attempt} in a row: ${when}`);
      if (d.delayMs === 0) {
        pending.due.add(vm);
        poke();
        continue;
      }
      background(
        deps.clock.sleep(d.delayMs, signal).then(() => {
          pending.due.add(vm);
          poke();
        }),
      );
    }
  }

  /** Watch the process of every running VM; an armed VM found dead without an event is an exit. */
  function arm(observed: Observed): VmExit[] {
    const missed: VmExit[] = [];
    for (const [vm, a] of armed) {
      const o = observed.vms[vm];
      if (alive(o?.power) && o?.pid === a.pid) continue;
      a.off();
      armed.delete(vm);
      if (!alive(o?.power)) missed.push({ vm, pid: a.pid, kind: 'failure' });
    }
    for (const [vm, o] of Object.entries(observed.vms)) {
      if (!alive(o.power)) continue;
      if (held.has(vm)) {
        held.delete(vm); // running again (`tend start`, `tend up`): the hold is over
      }
      if (o.pid === null || armed.has(vm) || !deps.backend.watchExit) continue;
      const pid = o.pid;
      const off = deps.backend.watchExit(project, vm, pid, (e) => {
        if (armed.get(vm)?.pid !== pid) return;
        armed.get(vm)?.off();
        armed.delete(vm);
        pending.exits.push(e);
        poke();
      });
      armed.set(vm, { pid, off });
    }
    return missed;
  }

  function namesFor(targets: Set<string> | 'all'): string[] | undefined {
    const blocked = new Set([...held.keys()].filter((v) => project.vms.some((s) => s.name === v)));
    for (const d of dependentsOf(project, blocked)) blocked.add(d);
    if (targets === 'all') {
      if (blocked.size === 0) return undefined;
      return project.vms.map((v) => v.name).filter((n) => !blocked.has(n));
    }
    return [...targets].filter((n) => !blocked.has(n) && project.vms.some((v) => v.name === n));
  }

  async function pass(work: Pending): Promise<void> {
    const triggers: PassReport['triggers'] = [];
    let targets = new Set<string>() as Set<string> | 'all';
    const add = (t: Set<string> | 'all'): void => {
      if (targets === 'all') return;
      if (t === 'all') targets = 'all';
      else for (const v of t) targets.add(v);
    };
    if (work.initial) {
      triggers.push('initial');
      add('all');
    }
    if (work.reload || work.files.size > 0) {
      triggers.push(work.reload ? 'reload' : 'files');
      const r = await reloadProject(work.files, work.reload ? 'reload' : 'files');
      add(r.all ? 'all' : r.vms);
    }
    if (work.resync) {
      triggers.push('resync');
      add('all');
    }
    if (work.due.size > 0) {
      triggers.push('backoff');
      for (const vm of work.due) held.delete(vm);
      add(work.due);
    }
    if (work.exits.length > 0) triggers.push('exit');
    const t = targets as Set<string> | 'all';
    const quiet = t !== 'all' && t.size === 0 && work.exits.length === 0;
    if (quiet) {
      // only a rearm: observe (read-only, no lock) and watch what runs now; nothing to converge
      const observed = work.rearm ? await deps.backend.observe(project, signal).catch(() => null) : null;
      if (observed) {
        const missed = arm(observed);
        if (missed.length > 0) {
          pending.exits.push(...missed);
          poke();
        }
      }
      return;
    }

    let report: PassReport = { triggers, names: [], result: null };
    try {
      await deps.withLock(async () => {
        let exits = work.exits;
        if (exits.length > 0 || targets === 'all') {
          const observed = await deps.backend.observe(project, signal);
          exits = [...exits, ...arm(observed)];
          add(new Set(handleExits(exits, observed)));
        }
        const names = namesFor(targets);
        report = { triggers, names, result: null };
        if (names && names.length === 0) return;
        report.result = await converge(project, deps, {
          recreate: opts.recreate,
          prune: opts.prune,
          provision: opts.provision,
          ...(names ? { names } : {}),
          signal,
          ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
        });
        const states = Object.entries(report.result.vms).map(([vm, s]) => `${vm}: ${s.state}${s.error ? ` (${s.error})` : ''}`);
        // a resync that found nothing to do stays quiet (no line every 30 s in the journal)
        const quietResync =
          triggers.length === 1 && triggers[0] === 'resync' && report.result.ok && !report.result.entries.some(isMutating);
        if (!quietResync) emit(report.result.ok ? 'Normal' : 'Warning', 'Reconciled', undefined, states.join(', ') || 'nothing to do');
        const after = await deps.backend.observe(project, signal);
        const missed = arm(after);
        if (missed.length > 0) {
          pending.exits.push(...missed);
          poke();
        }
        retryFailed(report.result, after);
      }, signal);
    } catch (e) {
      if (signal.aborted) return;
      report.error = e instanceof Error ? e : new Error(String(e));
      emit('Warning', 'ReconcileFailed', undefined, `reconcile failed: ${report.error.message}; retrying at the next change or resync`);
    }
    if (report.result || report.error) opts.onPass?.(report);
  }

  // ---- the loop ----------------------------------------------------------------------------------

  async function run(): Promise<void> {
    deps.watchFiles?.(watchedPaths(project));
    if (resyncMs > 0) {
      background(
        (async () => {
          while (await sleep(resyncMs)) {
            pending.resync = true;
            poke();
          }
        })(),
      );
    }
    while (!signal.aborted) {
      if (!hasWork(pending)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      // debounce file events (exits, reloads and resyncs do not wait)
      if (pending.files.size > 0 && !pending.initial && pending.exits.length === 0) {
        // ... but a stream of saves never holds reconciling off for more than MAX_DEBOUNCE_FACTOR × debounce
        const deadline = (firstFileEventAt ?? deps.clock.now()) + Math.max(debounceMs * MAX_DEBOUNCE_FACTOR, 1000);
        for (;;) {
          const now = deps.clock.now();
          const quietFor = now - lastFileEventAt;
          if (quietFor >= debounceMs || now >= deadline) break;
          if (!(await sleep(Math.min(debounceMs - quietFor, deadline - now)))) return;
        }
      }
      const work = pending;
      pending = empty();
      firstFileEventAt = null;
      await pass(work);
    }
  }

  const done = (async () => {
    try {
      await run();
    } finally {
      wake = null;
      for (const a of armed.values()) a.off();
      armed.clear();
      await Promise.all([...timers]);
    }
  })();
  signal.addEventListener('abort', poke, { once: true });

  return {
    filesChanged(paths) {
      if (paths.length === 0) return;
      for (const p of paths) pending.files.add(p);
      lastFileEventAt = deps.clock.now();
      firstFileEventAt ??= lastFileEventAt;
      poke();
    },
    reload() {
      pending.reload = true;
      poke();
    },
    vmExited(e) {
      pending.exits.push(e);
      poke();
    },
    resync() {
      pending.resync = true;
      poke();
    },
    rearm() {
      pending.rearm = true;
      poke();
    },
    get project() {
      return project;
    },
    held,
    done,
  };
}
