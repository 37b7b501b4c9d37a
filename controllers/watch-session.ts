/**
 * One pass of `tend watch` while it holds the project lock: the converge of the pass's targets,
 * plus what a VM needs at once while that converge still runs. Each VM's result is handled the
 * moment the VM settles, not when the whole pass ends: a VM that failed (its process died during
 * readiness, say) and that the retry policy restarts at once is converged again right away, in
 * parallel with the VMs still in flight; an exit of a VM outside the running converges is handled
 * the same way. A VM is in at most one converge at a time (`busy`); a follow-up whose VM or
 * dependencies are busy waits for the next pass.
 */
import type { Project } from '../schemas/model.js';
import type { Observed, VmExit } from '../schemas/ports.js';
import { withDependencies } from './order.js';
import type { PlanEntry } from './plan.js';
import { converge, notOk, type ControllerDeps, type ConvergeResult, type RunOptions, type VmResult } from './reconciler.js';
import type { Retries } from './retries.js';
import type { WorkQueue } from './workqueue.js';

export interface SessionEnv {
  project: Project;
  deps: ControllerDeps;
  flags: { recreate: boolean; prune: boolean; provision: boolean };
  run: RunOptions & { signal: AbortSignal };
  /** aborted by a save: converges start nothing more */
  cancel: AbortSignal;
  retries: Retries;
  queue: WorkQueue<string>;
  /** exits reported and not yet decided, by VM */
  exits: Map<string, VmExit>;
}

export class Session {
  private readonly busy = new Set<string>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly vms: Record<string, VmResult> = {};
  private readonly entries: PlanEntry[] = [];
  private readonly cancelled: string[] = [];
  private failure: unknown = null;

  constructor(private readonly env: SessionEnv) {}

  private spec(vm: string) {
    return this.env.project.vms.find((v) => v.name === vm);
  }

  /** Converge `names` (undefined: all, orphans included) beside whatever runs already. */
  launch(names: string[] | undefined, observed?: Observed): void {
    const { project, deps, flags, run, cancel } = this.env;
    const claimed = names
      ? withDependencies(names, (n) => this.spec(n)?.dependsOn ?? [])
      : [...project.vms.map((v) => v.name), ...Object.keys(observed?.vms ?? {})];
    for (const n of claimed) this.busy.add(n);
    const t: Promise<void> = converge(project, deps, {
      ...flags,
      ...(names ? { names } : {}),
      ...(observed ? { observed } : {}),
      ...run,
      cancel,
      onSettled: (vm, s) => this.settled(vm, s),
    })
      .then((r) => this.merge(r))
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => {
        for (const n of claimed) this.busy.delete(n);
        this.tasks.delete(t);
      });
    this.tasks.add(t);
  }

  /** A VM's process ended while this session runs. */
  exited(e: VmExit): void {
    const { exits, queue, retries } = this.env;
    if (this.busy.has(e.vm)) {
      // its actor sees the exit itself and is decided when it settles; if not, the next pass
      exits.set(e.vm, e);
      queue.add(e.vm);
      return;
    }
    this.follow(e.vm, (observed) => {
      exits.delete(e.vm);
      return retries.afterExit(e, this.spec(e.vm), observed.vms[e.vm]);
    });
  }

  /** Wait for every converge (follow-ups included); the pass's merged result. */
  async done(): Promise<ConvergeResult> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
    if (this.failure !== null) throw this.failure;
    const ok = !Object.values(this.vms).some(notOk) && this.cancelled.length === 0;
    return { ok, entries: this.entries, vms: this.vms, cancelled: this.cancelled };
  }

  private merge(r: ConvergeResult): void {
    for (const e of r.entries) if (!this.entries.some((x) => x.vm === e.vm)) this.entries.push(e);
    Object.assign(this.vms, r.vms);
    this.cancelled.push(...r.cancelled);
  }

  private settled(vm: string, s: VmResult): void {
    this.busy.delete(vm);
    if (s.state !== 'Failed') return;
    this.follow(vm, (observed) => this.env.retries.afterResult(vm, s, this.spec(vm), observed.vms[vm]));
  }

  /** Decide about a VM from a fresh observation: converge it again now, later, or not at all. */
  private follow(vm: string, decide: (observed: Observed) => { requeueAfter?: number; terminal?: boolean }): void {
    const { deps, project, run, retries, queue, exits } = this.env;
    const t: Promise<void> = deps.backend
      .observe(project, run.signal)
      .then((observed) => {
        const r = decide(observed);
        if (r.requeueAfter === undefined && !r.terminal) return;
        exits.delete(vm); // decided: the exit and the failure it caused count once
        queue.forget(vm);
        if (r.requeueAfter !== 0) {
          if (r.requeueAfter !== undefined) queue.addAfter(vm, r.requeueAfter);
          return;
        }
        retries.release(vm);
        const names = retries.runnable(project, new Set([vm])) ?? [vm];
        if (names.length === 0) return; // a dependency is held: as a pass would, leave it
        if (withDependencies(names, (n) => this.spec(n)?.dependsOn ?? []).some((n) => this.busy.has(n))) queue.add(vm);
        else this.launch(names, observed);
      })
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.tasks.delete(t));
    this.tasks.add(t);
  }
}
