/**
 * The VM state machine (xstate v5): one actor per VM, rebuilt on every converge from its input
 * (the desired spec, the plan entry and what the backend observed), never from a saved belief.
 *
 *   Deciding ─┬─ create/start/reseed ──────────────▶ Preparing ─▶ Prepared ─▶ Starting ─▶ Running
 *             ├─ restart/recreate ─▶ Stopping ─────▶ Preparing            (reseed: Running)   │
 *             ├─ stop ─────────────▶ Stopping ─────▶ Stopped                   Provisioning ◀┤
 *             ├─ prune ────────────▶ Destroying ───▶ Destroyed                      │         │
 *             ├─ none ─────────────▶ Running / Paused / Stopped                    Ready ◀───┘
 *             ├─ recreate-required ▶ RecreateRequired (left as it is)
 *             └─ orphan ───────────▶ Orphan (reported)
 *
 * Side effects run only as invoked `fromPromise` actors that hand xstate's `signal` to the
 * backend/guest; every invoke has `onError` (→ Failed, message in context, VmFailed event).
 * `UPDATE` (new spec/plan entry) leaves the current state, so xstate aborts the in-flight call's
 * signal, and re-decides. `STOP` and `DESTROY` work from any state. Settled states carry the tag
 * `settled`; they are not final, so a long-running owner can still send UPDATE/STOP/DESTROY.
 */
import { assign, emit, enqueueActions, fromPromise, setup, type SnapshotFrom } from 'xstate';
import type { Project, VmSpec } from '../schemas/model.js';
import type { PlanEntry } from './plan.js';
import type { Backend, Clock, Guest, ObservedVm, StartResult, TendEvent } from '../schemas/ports.js';

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
}

export type VmMachineEvent =
  { type: 'UPDATE'; vm: VmSpec | null; entry: PlanEntry; observed?: ObservedVm } | { type: 'STOP' } | { type: 'DESTROY' };

export interface VmEmitted {
  type: 'tend';
  event: TendEvent;
}

interface VmContext extends VmMachineInput {
  name: string;
  /** where Stopping goes next */
  afterStop: 'stopped' | 'prepare';
  recreateDisk: boolean;
  /** this actor started (or restarted) the VM, so readiness must be checked */
  startedHere: boolean;
  /** the last start's result (pid, accel, ports) */
  started: StartResult | null;
  /** whether the last Running check found provisioning due */
  provisionDue: boolean;
  error: string | null;
  /** which step failed (Preparing, Starting, ...) */
  failedIn: string | null;
  /** serialises this VM's side effects (see `inLane`) */
  lane: Lane;
}

interface Lane {
  tail: Promise<void>;
}

/**
 * Run `fn` after the VM's previous side effect settled. When UPDATE/STOP/DESTROY cancels a step,
 * xstate aborts its signal but does not wait for it; the lane makes the next step wait until the
 * aborted call has actually let go, so a VM never has two backend calls in flight at once.
 */
function inLane<T>(lane: Lane, fn: () => Promise<T>): Promise<T> {
  const p = lane.tail.then(fn);
  lane.tail = p.then(
    () => undefined,
    () => undefined,
  );
  return p;
}

/** True when the guest's provisioning record is behind the declared steps. */
async function provisioningDue(ctx: VmContext, signal: AbortSignal): Promise<boolean> {
  const vm = ctx.vm;
  if (!vm || !ctx.options.provision || vm.provision.length === 0) return false;
  if (ctx.options.forceProvision || ctx.startedHere) return true;
  if (ctx.guest.provisionPending) return ctx.guest.provisionPending(ctx.project, vm, ctx.observed?.provisioned ?? [], signal);
  // No local hash check offered by this guest: compare step counts with the record.
  return (ctx.observed?.provisioned.length ?? 0) !== vm.provision.length;
}

function need(vm: VmSpec | null, what: string): VmSpec {
  if (!vm) throw new Error(`cannot ${what}: the VM is not declared in the project`);
  return vm;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function ev(ctx: VmContext, type: TendEvent['type'], reason: string, message: string): VmEmitted {
  return { type: 'tend', event: { time: new Date(ctx.clock.now()).toISOString(), type, reason, vm: ctx.name, message } };
}

const alive = (o: ObservedVm | undefined): boolean => o?.power === 'running' || o?.power === 'paused' || o?.power === 'unknown';

export const vmMachine = setup({
  types: {
    context: {} as VmContext,
    input: {} as VmMachineInput,
    events: {} as VmMachineEvent,
    emitted: {} as VmEmitted,
  },
  actors: {
    prepare: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () =>
        input.backend.prepare(input.project, need(input.vm, 'prepare'), { recreateDisk: input.recreateDisk }, signal),
      ),
    ),
    start: fromPromise<StartResult, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => input.backend.start(input.project, need(input.vm, 'start'), signal)),
    ),
    stop: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => input.backend.stop(input.project, input.name, { timeout: input.vm?.stopGracePeriod ?? 30 }, signal)),
    ),
    destroy: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => input.backend.destroy(input.project, input.name, signal)),
    ),
    /** Running: check readiness only when it matters (just started, or provisioning is due). */
    check: fromPromise<{ due: boolean }, VmContext>(({ input, signal }) =>
      inLane(input.lane, async () => {
        const due = await provisioningDue(input, signal);
        if (input.startedHere || due) await input.guest.waitReady(input.project, need(input.vm, 'check readiness'), signal);
        return { due };
      }),
    ),
    provision: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () =>
        input.guest.provision(input.project, need(input.vm, 'provision'), { force: input.options.forceProvision ?? false }, signal),
      ),
    ),
  },
  guards: {
    isAction: ({ context }, params: { action: PlanEntry['action'] }) => context.entry.action === params.action,
    isDestroyCommand: ({ context }) => context.command === 'destroy',
    observedRunning: ({ context }) => context.observed?.power === 'running',
    observedPaused: ({ context }) => context.observed?.power === 'paused',
    keepsRunning: ({ context }) => context.entry.action === 'reseed' && alive(context.observed) && !context.startedHere,
    afterStopPrepare: ({ context }) => context.afterStop === 'prepare',
    provisionDue: ({ context }) => context.provisionDue,
  },
}).createMachine({
  id: 'vm',
  context: ({ input }) => ({
    ...input,
    name: input.vm?.name ?? input.entry.vm,
    afterStop: 'stopped',
    recreateDisk: false,
    startedHere: false,
    started: null,
    provisionDue: false,
    error: null,
    failedIn: null,
    lane: { tail: Promise.resolve() },
  }),
  initial: 'Deciding',
  on: {
    UPDATE: {
      target: '.Deciding',
      reenter: true,
      actions: [
        assign(({ event }) => ({
          vm: event.vm,
          entry: event.entry,
          ...(event.observed ? { observed: event.observed } : {}),
          command: undefined,
          error: null,
          failedIn: null,
        })),
        emit(({ context }) =>
          ev(context, 'Normal', 'VmUpdated', `desired state changed: ${context.entry.action}; the step in progress was cancelled`),
        ),
      ],
    },
    STOP: { target: '.Stopping', reenter: true, actions: assign({ afterStop: 'stopped' }) },
    DESTROY: { target: '.Destroying', reenter: true, actions: assign({ command: 'destroy' as const }) },
  },
  states: {
    Deciding: {
      always: [
        { guard: 'isDestroyCommand', target: 'Destroying' },
        { guard: { type: 'isAction', params: { action: 'orphan' } }, target: 'Orphan' },
        { guard: { type: 'isAction', params: { action: 'prune' } }, target: 'Destroying' },
        { guard: { type: 'isAction', params: { action: 'recreate-required' } }, target: 'RecreateRequired' },
        { guard: { type: 'isAction', params: { action: 'stop' } }, target: 'Stopping', actions: assign({ afterStop: 'stopped' }) },
        {
          guard: { type: 'isAction', params: { action: 'restart' } },
          target: 'Stopping',
          actions: assign({ afterStop: 'prepare', recreateDisk: false }),
        },
        {
          guard: { type: 'isAction', params: { action: 'recreate' } },
          target: 'Stopping',
          actions: assign({ afterStop: 'prepare', recreateDisk: true }),
        },
        { guard: { type: 'isAction', params: { action: 'create' } }, target: 'Preparing', actions: assign({ recreateDisk: false }) },
        { guard: { type: 'isAction', params: { action: 'start' } }, target: 'Preparing', actions: assign({ recreateDisk: false }) },
        { guard: { type: 'isAction', params: { action: 'reseed' } }, target: 'Preparing', actions: assign({ recreateDisk: false }) },
        // none: nothing to change; a running VM still gets its readiness/provisioning pass
        { guard: 'observedRunning', target: 'Running' },
        { guard: 'observedPaused', target: 'Paused' },
        { target: 'Stopped' },
      ],
    },
    Preparing: {
      entry: emit(({ context }) =>
        ev(
          context,
          'Normal',
          'VmPreparing',
          context.recreateDisk ? 'preparing a new disk (recreate); named volumes kept' : 'preparing disk, seed and keys',
        ),
      ),
      invoke: {
        src: 'prepare',
        input: ({ context }) => context,
        onDone: { target: 'Prepared' },
        onError: { target: 'Failed', actions: assign(({ event }) => ({ error: messageOf(event.error), failedIn: 'Preparing' })) },
      },
    },
    Prepared: {
      entry: emit(({ context }) =>
        ev(context, 'Normal', 'VmPrepared', context.entry.action === 'reseed' ? 'new seed written' : 'prepared'),
      ),
      always: [{ guard: 'keepsRunning', target: 'Running' }, { target: 'Starting' }],
    },
    Starting: {
      entry: emit(({ context }) => ev(context, 'Normal', 'VmStarting', 'starting QEMU')),
      invoke: {
        src: 'start',
        input: ({ context }) => context,
        onDone: {
          target: 'Running',
          actions: [
            assign(({ event }) => ({ startedHere: true, started: event.output })),
            emit(({ context }) =>
              ev(
                context,
                'Normal',
                'VmStarted',
                `started (pid ${context.started?.pid}, ${context.started?.accel}, ${context.vm?.network.mode === 'tap' ? 'ssh at its bridge address' : `ssh on port ${context.started?.sshPort}`})`,
              ),
            ),
          ],
        },
        onError: { target: 'Failed', actions: assign(({ event }) => ({ error: messageOf(event.error), failedIn: 'Starting' })) },
      },
    },
    Running: {
      invoke: {
        src: 'check',
        input: ({ context }) => context,
        onDone: [
          { guard: ({ event }) => event.output.due, target: 'Provisioning', actions: assign({ provisionDue: true }) },
          { target: 'Ready', actions: assign({ provisionDue: false }) },
        ],
        onError: { target: 'Failed', actions: assign(({ event }) => ({ error: messageOf(event.error), failedIn: 'Running' })) },
      },
    },
    Provisioning: {
      entry: emit(({ context }) => ev(context, 'Normal', 'VmProvisioning', 'running provision steps')),
      invoke: {
        src: 'provision',
        input: ({ context }) => context,
        onDone: {
          target: 'Ready',
          actions: emit(({ context }) => ev(context, 'Normal', 'VmProvisioned', 'provision steps done')),
        },
        onError: { target: 'Failed', actions: assign(({ event }) => ({ error: messageOf(event.error), failedIn: 'Provisioning' })) },
      },
    },
    Ready: {
      tags: ['settled', 'usable'],
      // A VM that was already Ready with nothing to do emits nothing: a resync stays silent.
      entry: enqueueActions(({ context, enqueue }) => {
        if (context.startedHere || context.provisionDue || context.entry.action !== 'none') {
          enqueue.emit(
            ev(
              context,
              'Normal',
              'VmReady',
              context.startedHere ? 'ready' : context.provisionDue ? 'ready, provisioned' : 'ready, changes applied',
            ),
          );
        }
      }),
    },
    Paused: { tags: ['settled'] },
    Stopping: {
      entry: emit(({ context }) => ev(context, 'Normal', 'VmStopping', `stopping (grace period ${context.vm?.stopGracePeriod ?? 30} s)`)),
      invoke: {
        src: 'stop',
        input: ({ context }) => context,
        onDone: [
          {
            guard: 'afterStopPrepare',
            target: 'Preparing',
            actions: emit(({ context }) => ev(context, 'Normal', 'VmStopped', 'stopped to apply changes')),
          },
          { target: 'Stopped', actions: emit(({ context }) => ev(context, 'Normal', 'VmStopped', 'stopped')) },
        ],
        onError: { target: 'Failed', actions: assign(({ event }) => ({ error: messageOf(event.error), failedIn: 'Stopping' })) },
      },
    },
    Stopped: { tags: ['settled'] },
    Destroying: {
      entry: emit(({ context }) => ev(context, 'Normal', 'VmDestroying', 'stopping and deleting (named volumes kept)')),
      invoke: {
        src: 'destroy',
        input: ({ context }) => context,
        onDone: {
          target: 'Destroyed',
          actions: emit(({ context }) =>
            context.command !== 'destroy' && context.entry.action === 'prune'
              ? ev(context, 'Normal', 'VmPruned', 'no longer declared: deleted (--prune)')
              : ev(context, 'Normal', 'VmDestroyed', 'deleted (named volumes kept)'),
          ),
        },
        onError: { target: 'Failed', actions: assign(({ event }) => ({ error: messageOf(event.error), failedIn: 'Destroying' })) },
      },
    },
    Destroyed: { tags: ['settled'] },
    Failed: {
      tags: ['settled'],
      entry: emit(({ context }) =>
        ev(context, 'Warning', 'VmFailed', `${context.failedIn ?? 'reconcile'} failed: ${context.error ?? 'unknown error'}`),
      ),
    },
    RecreateRequired: {
      tags: ['settled'],
      entry: emit(({ context }) =>
        ev(context, 'Warning', 'RecreateRequired', `${context.entry.changed.join('; ')}: ${context.entry.notes.join('; ')}`),
      ),
    },
    Orphan: {
      tags: ['settled'],
      entry: emit(({ context }) => ev(context, 'Warning', 'OrphanFound', context.entry.notes.join('; ') || 'no longer declared')),
    },
  },
});

export type VmSnapshot = SnapshotFrom<typeof vmMachine>;

export interface VmStatus {
  state: string;
  error?: string;
  conditions: string[];
}

/** What `ps`, `converge` and watch show for a VM: its state name and conditions. */
export function vmStatus(snap: VmSnapshot): VmStatus {
  const state = typeof snap.value === 'string' ? snap.value : JSON.stringify(snap.value);
  const ctx = snap.context;
  const conditions: string[] = [];
  switch (state) {
    case 'Ready':
      conditions.push('Ready');
      // Readiness includes the healthcheck (Guest.waitReady runs it after cloud-init): a VM only
      // becomes Ready with a passing check, so Ready with a declared healthcheck means Healthy.
      if (ctx.vm?.healthcheck) conditions.push('Healthy');
      break;
    case 'Failed':
      conditions.push(`Failed: ${ctx.error ?? 'unknown error'}`);
      break;
    case 'RecreateRequired':
      conditions.push('RecreateRequired');
      if (alive(ctx.observed)) conditions.push('Running');
      break;
    case 'Orphan':
      conditions.push('Orphan');
      if (alive(ctx.observed)) conditions.push('Running');
      break;
    case 'Stopped':
      conditions.push('Stopped');
      if (ctx.observed?.intent === 'stopped') conditions.push('StopIntent');
      break;
    case 'Paused':
      conditions.push('Paused');
      break;
    case 'Destroyed':
      conditions.push('Destroyed');
      break;
    default:
      conditions.push('Progressing');
  }
  return ctx.error && state === 'Failed' ? { state, error: ctx.error, conditions } : { state, conditions };
}

/** True once the machine reached a state it rests in (Ready, Stopped, Failed, ...). */
export function isSettled(snap: VmSnapshot): boolean {
  return snap.hasTag('settled');
}
