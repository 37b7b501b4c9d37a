/**
 * The reconciler: observe → plan → one VM actor per planned VM, run in parallel subject to
 * depends_on (order.ts), wait for each to settle, report. Level-based: every call starts from a
 * fresh observation, so running it twice on a converged project does nothing the second time.
 * The imperative operations (start/stop/restart/suspend/resume/destroy/down) are in
 * imperative.ts. Policy only: every side effect goes through the given Backend and Guest.
 */
import { createActor, waitFor } from 'xstate';
import type { Project, VmSpec } from '../schemas/model.js';
import { EXIT, TendError, UsageError } from '../schemas/errors.js';
import { unknownVmMessage } from '../schemas/names.js';
import { runInOrder, withDependencies, type OrderItem, type RunOutcome } from './order.js';
import { plan, type PlanAction, type PlanEntry } from './plan.js';
import {
  alive,
  tendEvent,
  type Backend,
  type Clock,
  type Guest,
  type Observed,
  type ObservedVm,
  type TendEvent,
  type VmProgress,
} from '../schemas/ports.js';
import { isSettled, vmMachine, vmStatus, type VmMachineInput, type VmStatus } from './vm-machine.js';

export interface ControllerDeps {
  backend: Backend;
  guest: Guest;
  clock: Clock;
}

export interface RunOptions {
  signal?: AbortSignal;
  onEvent?: (e: TendEvent) => void;
  /** what each VM's long step is doing now (downloads, disk creation), for a live display */
  onProgress?: (p: VmProgress) => void;
}

export interface ConvergeOptions extends RunOptions {
  recreate: boolean;
  prune: boolean;
  /** limit to these VMs (their dependencies are included, as compose does) */
  names?: string[];
  /** run provision steps that are due */
  provision: boolean;
  /** run every provision step again (`tend provision`) */
  forceProvision?: boolean;
  /** an observation the caller has just made (saves observing twice); observed here otherwise */
  observed?: Observed;
  /** once aborted, VMs whose actor has not started yet are not started (`cancelled`); started ones finish */
  cancel?: AbortSignal;
  /** each VM's result as soon as its actor settled (before the others are done) */
  onSettled?: (vm: string, r: VmResult) => void;
}

export type VmResult = VmStatus;

export interface ConvergeResult {
  /** false when any VM failed, is blocked by a dependency, or is RecreateRequired */
  ok: boolean;
  entries: PlanEntry[];
  vms: Record<string, VmResult>;
  /** VMs not started because `cancel` aborted (not in `vms`) */
  cancelled: string[];
}

/** Actions that start a VM: these wait for the VM's dependencies to be Ready. */
const STARTS: ReadonlySet<PlanAction> = new Set(['create', 'start', 'restart', 'recreate']);

export function aborted(signal: AbortSignal | undefined, cause?: unknown): TendError {
  return new TendError('Aborted', 'interrupted: the operation in progress was cancelled', EXIT.failure, { cause: cause ?? signal?.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw aborted(signal);
}

export function event(
  clock: Clock,
  type: TendEvent['type'],
  reason: TendEvent['reason'],
  vm: string | undefined,
  message: string,
): TendEvent {
  return tendEvent(clock.now(), type, reason, vm, message);
}

export async function observe(project: Project, deps: ControllerDeps, signal: AbortSignal | undefined): Promise<Observed> {
  throwIfAborted(signal);
  try {
    return await deps.backend.observe(project, signal);
  } catch (e) {
    if (signal?.aborted) throw aborted(signal, e);
    throw e;
  }
}

/** Every name must be a declared VM or one tend has state for (an orphan). */
export function checkNames(project: Project, observed: Observed, names: readonly string[]): void {
  const known = [...new Set([...project.vms.map((v) => v.name), ...Object.keys(observed.vms)])];
  for (const n of names) if (!known.includes(n)) throw new UsageError(unknownVmMessage(n, project.name, known), 'UnknownVm');
}

/** Run one VM actor until it settles; it is stopped afterwards (which aborts anything in flight). */
export async function runVmActor(input: VmMachineInput, opts: RunOptions): Promise<VmResult> {
  throwIfAborted(opts.signal);
  const actor = createActor(vmMachine, { input: opts.onProgress && !input.onProgress ? { ...input, onProgress: opts.onProgress } : input });
  const sub = actor.on('tend', (e) => opts.onEvent?.(e.event));
  actor.start();
  try {
    return vmStatus(await waitFor(actor, isSettled, opts.signal ? { signal: opts.signal } : {}));
  } catch (e) {
    if (opts.signal?.aborted) throw aborted(opts.signal, e);
    throw e;
  } finally {
    sub.unsubscribe();
    const lane = actor.getSnapshot().context.lane;
    actor.stop(); // aborts the signal of a step still in flight
    // Return only once that step has let go (backends honour their signal), so nothing dangles.
    await lane.tail;
  }
}

function outcomeOf(r: VmResult, obs: ObservedVm | undefined): RunOutcome {
  switch (r.state) {
    case 'Ready':
      return { usable: true, summary: 'is ready' };
    case 'RecreateRequired':
      // left as it is: a running one keeps serving its dependents
      return alive(obs?.power)
        ? { usable: true, summary: 'is running (RecreateRequired)' }
        : { usable: false, summary: 'needs a new disk (RecreateRequired)' };
    case 'Failed':
      return { usable: false, summary: `failed: ${r.error ?? 'unknown error'}` };
    default:
      return { usable: false, summary: `is ${r.state.toLowerCase()}` };
  }
}

/** What a dependent waits for before it starts (design §3: its dependency Ready, i.e. healthy when it declares a healthcheck). */
export function waitingFor(dep: string, spec: VmSpec | undefined): string {
  return `waiting for ${dep} (${spec?.healthcheck ? 'healthy' : 'ready'})`;
}

export const notOk = (r: VmResult): boolean => r.state === 'Failed' || r.state === 'Blocked' || r.state === 'RecreateRequired';

/**
 * Make the project real: observe, plan, and drive one actor per planned VM (dependents start only
 * once their dependencies are Ready). A VM already Ready with nothing to change costs no SSH round
 * trip unless provisioning is due (docs/controller.md).
 */
export async function converge(project: Project, deps: ControllerDeps, opts: ConvergeOptions): Promise<ConvergeResult> {
  const observed = opts.observed ?? (await observe(project, deps, opts.signal));
  if (opts.names) checkNames(project, observed, opts.names);
  const specs = new Map(project.vms.map((v) => [v.name, v]));
  const names = opts.names ? withDependencies(opts.names, (n) => specs.get(n)?.dependsOn ?? []) : undefined;
  const entries = plan(project, observed, { recreate: opts.recreate, prune: opts.prune, ...(names ? { names } : {}) });
  const byVm = new Map(entries.map((e) => [e.vm, e]));

  const items: OrderItem[] = entries.map((e) => ({ name: e.vm, dependsOn: specs.get(e.vm)?.dependsOn ?? [], gated: STARTS.has(e.action) }));
  const vms: Record<string, VmResult> = {};
  const cancelled: string[] = [];
  const results = await runInOrder(
    items,
    async (name) => {
      const r = await runVmActor(
        {
          project,
          vm: specs.get(name) ?? null,
          entry: byVm.get(name)!,
          observed: observed.vms[name],
          options: { provision: opts.provision, ...(opts.forceProvision ? { forceProvision: true } : {}) },
          ...deps,
        },
        opts,
      );
      vms[name] = r;
      opts.onSettled?.(name, r);
      return outcomeOf(r, observed.vms[name]);
    },
    opts.cancel,
    (name, dep) => opts.onProgress?.({ vm: name, message: waitingFor(dep, specs.get(dep)) }),
  );
  for (const [name, r] of results) {
    if (r.ran) continue;
    if (r.cancelled) {
      cancelled.push(name);
      continue;
    }
    vms[name] = { state: 'Blocked', error: r.message, conditions: [`Blocked: ${r.message}`] };
    opts.onEvent?.(event(deps.clock, 'Warning', 'DependencyNotReady', name, `not started: ${r.message}`));
  }
  // keep the plan's order in the result
  const ordered: Record<string, VmResult> = {};
  for (const e of entries) if (vms[e.vm]) ordered[e.vm] = vms[e.vm]!;
  return { ok: !Object.values(ordered).some(notOk) && cancelled.length === 0, entries, vms: ordered, cancelled };
}
