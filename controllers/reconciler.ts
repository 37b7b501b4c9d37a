/**
 * The reconciler: observe → plan → one VM actor per planned VM, run in parallel subject to
 * depends_on (order.ts), wait for each to settle, report. Level-based: every call starts from a
 * fresh observation, so running it twice on a converged project does nothing the second time.
 * Also the single-VM operations the CLI calls (start/stop/restart/suspend/resume/destroy) and
 * `downProject`. Policy only: every side effect goes through the given Backend and Guest.
 */
import { createActor, waitFor } from 'xstate';
import type { Project, VmSpec } from '../schemas/model.js';
import { EXIT, TendError, UsageError } from '../schemas/errors.js';
import { didYouMean } from '../schemas/names.js';
import { runInOrder, reversed, withDependencies, type OrderItem, type RunOutcome } from './order.js';
import { plan, type PlanAction, type PlanEntry } from './plan.js';
import type { Backend, Clock, Guest, Observed, ObservedVm, TendEvent } from '../schemas/ports.js';
import { isSettled, vmMachine, vmStatus, type VmMachineInput, type VmStatus } from './vm-machine.js';

export interface ControllerDeps {
  backend: Backend;
  guest: Guest;
  clock: Clock;
}

export interface RunOptions {
  signal?: AbortSignal;
  onEvent?: (e: TendEvent) => void;
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
}

export type VmResult = VmStatus;

export interface ConvergeResult {
  /** false when any VM failed, is blocked by a dependency, or is RecreateRequired */
  ok: boolean;
  entries: PlanEntry[];
  vms: Record<string, VmResult>;
}

/** Actions that start a VM: these wait for the VM's dependencies to be Ready. */
const STARTS: ReadonlySet<PlanAction> = new Set(['create', 'start', 'restart', 'recreate']);

const alive = (o: ObservedVm | undefined): boolean => o?.power === 'running' || o?.power === 'paused' || o?.power === 'unknown';

function aborted(signal: AbortSignal | undefined, cause?: unknown): TendError {
  return new TendError('Aborted', 'interrupted: the operation in progress was cancelled', EXIT.failure, { cause: cause ?? signal?.reason });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw aborted(signal);
}

function event(clock: Clock, type: TendEvent['type'], reason: string, vm: string | undefined, message: string): TendEvent {
  return { time: new Date(clock.now()).toISOString(), type, reason, ...(vm ? { vm } : {}), message };
}

async function observe(project: Project, deps: ControllerDeps, signal: AbortSignal | undefined): Promise<Observed> {
  throwIfAborted(signal);
  try {
    return await deps.backend.observe(project, signal);
  } catch (e) {
    if (signal?.aborted) throw aborted(signal, e);
    throw e;
  }
}

/** Every name must be a declared VM or one tend has state for (an orphan). */
function checkNames(project: Project, observed: Observed, names: readonly string[]): void {
  const known = [...new Set([...project.vms.map((v) => v.name), ...Object.keys(observed.vms)])];
  for (const n of names) {
    if (known.includes(n)) continue;
    const hint = didYouMean(n, known);
    throw new UsageError(
      `no VM named "${n}" in project ${project.name}${hint ? `: did you mean "${hint}"?` : ''} (VMs: ${known.join(', ') || 'none'})`,
      'UnknownVm',
    );
  }
}

/** Run one VM actor until it settles; it is stopped afterwards (which aborts anything in flight). */
export async function runVmActor(input: VmMachineInput, opts: RunOptions): Promise<VmResult> {
  throwIfAborted(opts.signal);
  const actor = createActor(vmMachine, { input });
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
      return alive(obs)
        ? { usable: true, summary: 'is running (RecreateRequired)' }
        : { usable: false, summary: 'needs a new disk (RecreateRequired)' };
    case 'Failed':
      return { usable: false, summary: `failed: ${r.error ?? 'unknown error'}` };
    default:
      return { usable: false, summary: `is ${r.state.toLowerCase()}` };
  }
}

const notOk = (r: VmResult): boolean => r.state === 'Failed' || r.state === 'Blocked' || r.state === 'RecreateRequired';

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
  const results = await runInOrder(items, async (name) => {
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
    return outcomeOf(r, observed.vms[name]);
  });
  for (const [name, r] of results) {
    if (r.ran) continue;
    vms[name] = { state: 'Blocked', error: r.message, conditions: [`Blocked: ${r.message}`] };
    opts.onEvent?.(event(deps.clock, 'Warning', 'DependencyNotReady', name, `not started: ${r.message}`));
  }
  // keep the plan's order in the result
  const ordered: Record<string, VmResult> = {};
  for (const e of entries) if (vms[e.vm]) ordered[e.vm] = vms[e.vm]!;
  return { ok: !Object.values(ordered).some(notOk), entries, vms: ordered };
}

export interface DownOptions extends RunOptions {
  /** delete the VMs (disk, seed, keys) instead of only stopping them */
  destroy: boolean;
  /** also delete named volumes (only those no remaining VM mounts when `names` is given) */
  volumes: boolean;
  names?: string[];
  /**
   * record a stop intent for each declared VM (default true), so a running `watch` does not
   * bring them back; false for a `tend run` VM that is going away with its file
   */
  intent?: boolean;
}

function volumesOf(vm: VmSpec): string[] {
  return vm.volumes.flatMap((m) => (m.kind === 'named' ? [m.name] : []));
}

/**
 * `tend down`: stop (or destroy) the project's VMs, dependents before their dependencies. Like
 * `tend stop`, it records a stop intent for each declared VM first (design §3: a running `watch`
 * must not undo it); `tend up` or `tend start` clears it. Orphans are only touched when named.
 */
export async function downProject(project: Project, deps: ControllerDeps, opts: DownOptions): Promise<ConvergeResult> {
  if (opts.volumes && !deps.backend.removeVolumes) throw new UsageError('this backend cannot delete named volumes', 'VolumesUnsupported');
  const observed = await observe(project, deps, opts.signal);
  if (opts.names) checkNames(project, observed, opts.names);
  const specs = new Map(project.vms.map((v) => [v.name, v]));
  const targets = opts.names ?? project.vms.map((v) => v.name);
  const entries: PlanEntry[] = targets.map((name) => {
    const obs = observed.vms[name];
    if (opts.destroy)
      return { vm: name, action: obs ? 'prune' : 'none', changed: [], notes: obs ? ['destroy (named volumes kept)'] : ['not created'] };
    return { vm: name, action: alive(obs) ? 'stop' : 'none', changed: [], notes: [] };
  });
  const byVm = new Map(entries.map((e) => [e.vm, e]));
  const forward: OrderItem[] = targets.map((n) => ({ name: n, dependsOn: specs.get(n)?.dependsOn ?? [], gated: true }));
  const vms: Record<string, VmResult> = {};
  const results = await runInOrder(reversed(forward), async (name) => {
    const entry = byVm.get(name)!;
    const obs = observed.vms[name];
    const keepDown = opts.intent !== false && specs.has(name);
    if (keepDown) await deps.backend.setIntent(project, name, 'stopped');
    let r: VmResult;
    if (entry.action === 'none')
      r = { state: opts.destroy ? 'Destroyed' : 'Stopped', conditions: [opts.destroy ? 'Destroyed' : 'Stopped'] };
    else {
      r = await runVmActor(
        {
          project,
          vm: specs.get(name) ?? null,
          entry,
          observed: obs,
          options: { provision: false },
          ...deps,
          ...(opts.destroy ? { command: 'destroy' as const } : {}),
        },
        opts,
      );
      // destroy deleted the VM's folder with its intent: record it again
      if (keepDown && opts.destroy && r.state === 'Destroyed') await deps.backend.setIntent(project, name, 'stopped');
    }
    vms[name] = r;
    return r.state === 'Failed'
      ? { usable: false, summary: `failed: ${r.error ?? 'unknown error'}` }
      : { usable: true, summary: `is ${r.state.toLowerCase()}` };
  });
  for (const [name, r] of results) {
    if (r.ran) continue;
    const message = r.message.replace(/^waiting on/, 'still used by');
    vms[name] = { state: 'Blocked', error: message, conditions: [`Blocked: ${message}`] };
    opts.onEvent?.(event(deps.clock, 'Warning', 'DependencyNotReady', name, `left running: ${message}`));
  }
  const ok = !Object.values(vms).some(notOk);
  if (opts.volumes && ok && deps.backend.removeVolumes) {
    const kept = new Set(project.vms.filter((v) => !targets.includes(v.name)).flatMap(volumesOf));
    const doomed = opts.names
      ? [...new Set(targets.flatMap((n) => (specs.get(n) ? volumesOf(specs.get(n)!) : [])))].filter((v) => !kept.has(v))
      : Object.keys(project.volumes);
    if (doomed.length > 0) {
      throwIfAborted(opts.signal);
      await deps.backend.removeVolumes(project, doomed, opts.signal);
      opts.onEvent?.(event(deps.clock, 'Normal', 'VolumesRemoved', undefined, `named volumes deleted: ${doomed.join(', ')}`));
    }
  }
  const ordered: Record<string, VmResult> = {};
  for (const e of entries) if (vms[e.vm]) ordered[e.vm] = vms[e.vm]!;
  return { ok, entries, vms: ordered };
}

/**
 * `tend up` / `tend start`: clear the stop intents (`tend stop`, `tend down`) of the VMs asked
 * for and of everything they depend on (they cannot be Ready without it), in `observed` too.
 */
export async function clearStopIntents(
  project: Project,
  deps: ControllerDeps,
  observed: Observed,
  names?: readonly string[],
): Promise<void> {
  const specs = new Map(project.vms.map((v) => [v.name, v]));
  const targets = names ? withDependencies(names, (n) => specs.get(n)?.dependsOn ?? []) : project.vms.map((v) => v.name);
  for (const n of targets) {
    const vm = observed.vms[n];
    if (!vm?.intent) continue;
    await deps.backend.setIntent(project, n, null);
    observed.vms[n] = { ...vm, intent: null };
  }
}

// ---- one VM, imperative (the CLI's start/stop/restart/suspend/resume/destroy) ------------------

export interface VmCommandOptions extends RunOptions {
  provision?: boolean;
}

async function one(
  project: Project,
  deps: ControllerDeps,
  name: string,
  opts: RunOptions,
): Promise<{ observed: ObservedVm | undefined; spec: VmSpec | null }> {
  const observed = await observe(project, deps, opts.signal);
  checkNames(project, observed, [name]);
  return { observed: observed.vms[name], spec: project.vms.find((v) => v.name === name) ?? null };
}

function requireDeclared(project: Project, spec: VmSpec | null, name: string): VmSpec {
  if (!spec)
    throw new UsageError(`${name} is no longer declared in project ${project.name}: it can only be stopped or destroyed`, 'VmNotDeclared');
  return spec;
}

/**
 * `tend start web`: clear a stop intent and bring the VM (and what it depends on) to Ready, even
 * when the file says `state: stopped` (an imperative escape hatch; the next converge follows the file).
 */
export async function startVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<ConvergeResult> {
  const observed = await observe(project, deps, opts.signal);
  checkNames(project, observed, [name]);
  requireDeclared(project, project.vms.find((v) => v.name === name) ?? null, name);
  await clearStopIntents(project, deps, observed, [name]);
  const forced: Project = { ...project, vms: project.vms.map((v) => (v.name === name ? { ...v, runState: 'running' as const } : v)) };
  return converge(forced, deps, {
    recreate: false,
    prune: false,
    names: [name],
    provision: opts.provision ?? true,
    observed,
    ...pick(opts),
  });
}

/** `tend stop web`: record the intent first (so a running `watch` does not undo it), then stop. */
export async function stopVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  const { observed, spec } = await one(project, deps, name, opts);
  await deps.backend.setIntent(project, name, 'stopped');
  const entry: PlanEntry = { vm: name, action: alive(observed) ? 'stop' : 'none', changed: [], notes: ['stopped by `tend stop`'] };
  const obs = observed ? { ...observed, intent: 'stopped' as const } : undefined;
  return runVmActor({ project, vm: spec, entry, observed: obs, options: { provision: false }, ...deps }, opts);
}

/** `tend restart web`: stop and start again with the current settings (disk kept); clears a stop intent. */
export async function restartVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  const { observed, spec } = await one(project, deps, name, opts);
  const vm = requireDeclared(project, spec, name);
  await deps.backend.setIntent(project, name, null);
  const action: PlanAction = !observed?.exists ? 'create' : alive(observed) ? 'restart' : 'start';
  const entry: PlanEntry = { vm: name, action, changed: [], notes: ['restarted by `tend restart`'] };
  return runVmActor({ project, vm, entry, observed, options: { provision: opts.provision ?? true }, ...deps }, opts);
}

/** `tend destroy web`: stop if needed and delete the VM's folder; named volumes are kept. */
export async function destroyVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  const { observed, spec } = await one(project, deps, name, opts);
  const entry: PlanEntry = { vm: name, action: 'none', changed: [], notes: ['destroyed by `tend destroy`'] };
  return runVmActor({ project, vm: spec, entry, observed, options: { provision: false }, command: 'destroy', ...deps }, opts);
}

/** `tend suspend web` / `tend resume web`: pause or continue the vCPUs (QMP stop/cont). */
export async function suspendVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  return pauseOrResume(project, deps, name, 'suspend', opts);
}

export async function resumeVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  return pauseOrResume(project, deps, name, 'resume', opts);
}

async function pauseOrResume(
  project: Project,
  deps: ControllerDeps,
  name: string,
  what: 'suspend' | 'resume',
  opts: RunOptions,
): Promise<VmResult> {
  const { observed } = await one(project, deps, name, opts);
  if (!alive(observed)) throw new UsageError(`${name} is not running: nothing to ${what}`, 'VmNotRunning');
  try {
    if (what === 'suspend') await deps.backend.suspend(project, name, opts.signal);
    else await deps.backend.resume(project, name, opts.signal);
  } catch (e) {
    if (opts.signal?.aborted) throw aborted(opts.signal, e);
    throw e;
  }
  const state = what === 'suspend' ? 'Paused' : 'Running';
  opts.onEvent?.(
    event(deps.clock, 'Normal', what === 'suspend' ? 'VmSuspended' : 'VmResumed', name, what === 'suspend' ? 'paused' : 'running again'),
  );
  return { state, conditions: [state] };
}

function pick(opts: RunOptions): RunOptions {
  return { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) };
}
