/**
 * The imperative operations of the CLI, beside the declarative converge (design §1, "escape
 * hatches"): `start`, `stop`, `restart`, `suspend`/`resume`, `destroy` of one VM, and `down`.
 * Each records or clears the VM's intent (design §3) so a running `tend watch` honours it, then
 * drives the VM's actor (vm-machine.ts) like converge does. Policy only.
 */
import type { Project, VmSpec } from '../schemas/model.js';
import { UsageError } from '../schemas/errors.js';
import { alive, type Observed, type ObservedVm } from '../schemas/ports.js';
import { runInOrder, reversed, withDependencies, type OrderItem } from './order.js';
import type { PlanAction, PlanEntry } from './plan.js';
import {
  aborted,
  checkNames,
  converge,
  event,
  notOk,
  observe,
  runVmActor,
  throwIfAborted,
  type ControllerDeps,
  type ConvergeResult,
  type RunOptions,
  type VmResult,
} from './reconciler.js';

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
    return { vm: name, action: alive(obs?.power) ? 'stop' : 'none', changed: [], notes: [] };
  });
  const byVm = new Map(entries.map((e) => [e.vm, e]));
  const forward: OrderItem[] = targets.map((n) => ({ name: n, dependsOn: specs.get(n)?.dependsOn ?? [], gated: true }));
  const vms: Record<string, VmResult> = {};
  const results = await runInOrder(
    reversed(forward),
    async (name) => {
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
    },
    undefined,
    // a dependency goes down after what uses it: say so while it waits
    (name, dependent) =>
      opts.onProgress?.({ vm: name, message: `waiting for ${dependent} (${opts.destroy ? 'destroyed' : 'stopped'}), which uses it` }),
  );
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
  return { ok, entries, vms: ordered, cancelled: [] };
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

// ---- one VM -------------------------------------------------------------------------------------

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
export async function startVm(
  project: Project,
  deps: ControllerDeps,
  name: string | readonly string[],
  opts: VmCommandOptions = {},
): Promise<ConvergeResult> {
  const names = typeof name === 'string' ? [name] : [...name];
  const observed = await observe(project, deps, opts.signal);
  checkNames(project, observed, names);
  for (const n of names) requireDeclared(project, project.vms.find((v) => v.name === n) ?? null, n);
  await clearStopIntents(project, deps, observed, names);
  const forced: Project = {
    ...project,
    vms: project.vms.map((v) => (names.includes(v.name) ? { ...v, runState: 'running' as const } : v)),
  };
  return converge(forced, deps, {
    recreate: false,
    prune: false,
    names,
    provision: opts.provision ?? true,
    observed,
    ...pick(opts),
  });
}

/** `tend stop web`: record the intent first (so a running `watch` does not undo it), then stop. */
export async function stopVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  const { observed, spec } = await one(project, deps, name, opts);
  await deps.backend.setIntent(project, name, 'stopped');
  const entry: PlanEntry = { vm: name, action: alive(observed?.power) ? 'stop' : 'none', changed: [], notes: ['stopped by `tend stop`'] };
  const obs = observed ? { ...observed, intent: 'stopped' as const } : undefined;
  return runVmActor({ project, vm: spec, entry, observed: obs, options: { provision: false }, ...deps }, opts);
}

/** `tend restart web`: stop and start again with the current settings (disk kept); clears a stop intent. */
export async function restartVm(project: Project, deps: ControllerDeps, name: string, opts: VmCommandOptions = {}): Promise<VmResult> {
  const { observed, spec } = await one(project, deps, name, opts);
  const vm = requireDeclared(project, spec, name);
  await deps.backend.setIntent(project, name, null);
  const action: PlanAction = !observed?.exists ? 'create' : alive(observed?.power) ? 'restart' : 'start';
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
  if (!alive(observed?.power)) throw new UsageError(`${name} is not running: nothing to ${what}`, 'VmNotRunning');
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
