/**
 * The context of a VM actor (vm-machine.ts) and the helpers its steps share: the per-VM lane
 * that serialises side effects, the provisioning check, failures (with config faults told
 * apart), and events.
 */
import type { Project, VmSpec } from '../schemas/model.js';
import type { PlanEntry } from './plan.js';
import { EXIT } from '../schemas/errors.js';
import {
  tendEvent,
  type Backend,
  type Clock,
  type Guest,
  type ObservedVm,
  type StartResult,
  type PrepareOptions,
  type TendEvent,
  type VmProgress,
} from '../schemas/ports.js';

export interface VmMachineOptions {
  /** run provision steps that are due (false: `--no-provision`) */
  provision: boolean;
  /** run every provision step again, ignoring the layer cache (`tend provision`) */
  forceProvision?: boolean;
}

export interface VmMachineInput {
  project: Project;
  /** the desired spec; null for a VM that is no longer declared (orphan/prune) */
  vm: VmSpec | null;
  entry: PlanEntry;
  observed: ObservedVm | undefined;
  options: VmMachineOptions;
  backend: Backend;
  guest: Guest;
  clock: Clock;
  /** an imperative command that overrides the plan entry (`tend destroy web`) */
  command?: 'destroy';
  /** what a long step is doing now (download bytes, disk creation), for a live display */
  onProgress?: (p: VmProgress) => void;
}

export interface VmEmitted {
  type: 'tend';
  event: TendEvent;
}

export interface VmContext extends VmMachineInput {
  name: string;
  /** where Stopping goes next */
  afterStop: 'stopped' | 'prepare';
  recreateDisk: boolean;
  /** this actor started (or restarted) the VM, so readiness must be checked */
  startedHere: boolean;
  /** the last start's result (pid, accel, ports) */
  started: StartResult | null;
  /** this actor's stop saved the VM's state */
  savedHere: boolean;
  /** whether the last Running check found provisioning due */
  provisionDue: boolean;
  /** the last Running check waited for the guest (readiness was not known for this boot) */
  readyChecked: boolean;
  error: string | null;
  /** which step failed (Preparing, Starting, ...) */
  failedIn: string | null;
  /** the failure is a fault in the project's files (retrying cannot help until they change) */
  configFault: boolean;
  /** serialises this VM's side effects (see `inLane`) */
  lane: Lane;
}

interface Lane {
  tail: Promise<void>;
}

/**
 * Run `fn` after the VM's previous side effect settled. When the actor is stopped, xstate aborts
 * the step's signal but does not wait for it; the lane lets the owner wait until the aborted call
 * has actually let go (runVmActor awaits `lane.tail`), so nothing is left in flight.
 */
export function inLane<T>(lane: Lane, fn: () => Promise<T>): Promise<T> {
  const p = lane.tail.then(fn);
  lane.tail = p.then(
    () => undefined,
    () => undefined,
  );
  return p;
}

/** True when the guest's provisioning record is behind the declared steps. */
export async function provisioningDue(ctx: VmContext, signal: AbortSignal): Promise<boolean> {
  const vm = ctx.vm;
  if (!vm || !ctx.options.provision || vm.provision.length === 0) return false;
  if (ctx.options.forceProvision || ctx.startedHere) return true;
  if (ctx.guest.provisionPending) return ctx.guest.provisionPending(ctx.project, vm, ctx.observed?.provisioned ?? [], signal);
  // No local hash check offered by this guest: compare step counts with the record.
  return (ctx.observed?.provisioned.length ?? 0) !== vm.provision.length;
}

export function need(vm: VmSpec | null, what: string): VmSpec {
  if (!vm) throw new Error(`cannot ${what}: the VM is not declared in the project`);
  return vm;
}

/** A usage, invalid-input or not-found error (schemas/errors.ts): the project's files must change. */
const CONFIG_EXITS: ReadonlySet<number> = new Set([EXIT.usage, EXIT.invalidInput, EXIT.notFound]);

/** The context of a failed step: its message, where, and whether it is a config fault. */
export function failure(err: unknown, failedIn: string): Pick<VmContext, 'error' | 'failedIn' | 'configFault'> {
  const code = (err as { exitCode?: unknown } | null)?.exitCode;
  // the next step (schemas/errors.ts) stays with the VM's error: it is all `ps` and --json show
  const next = (err as { next?: unknown } | null)?.next;
  return {
    error: (err instanceof Error ? err.message : String(err)) + (typeof next === 'string' && next ? `; next: ${next}` : ''),
    failedIn,
    configFault: typeof code === 'number' && CONFIG_EXITS.has(code),
  };
}

export function ev(ctx: VmContext, type: TendEvent['type'], reason: TendEvent['reason'], message: string): VmEmitted {
  return { type: 'tend', event: tendEvent(ctx.clock.now(), type, reason, ctx.name, message) };
}

/** The backend's prepare options for this VM, its progress reported as the VM's (`VmProgress`). */
export function prepareOptions(ctx: VmContext): PrepareOptions {
  const report = ctx.onProgress;
  if (!report) return { recreateDisk: ctx.recreateDisk };
  let last = 'preparing';
  return {
    recreateDisk: ctx.recreateDisk,
    onProgress: (message) => {
      last = message;
      report({ vm: ctx.name, message });
    },
    onDownload: (download) => report({ vm: ctx.name, message: last, download }),
  };
}
