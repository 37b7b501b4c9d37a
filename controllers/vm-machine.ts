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
 * Stopping the actor (the reconciler does, once it settled or when its converge is aborted)
 * aborts the call in flight. The actor takes no events: a new desired state is a new actor in
 * the next pass (`tend watch`'s work queue), never a message to a running one. Settled states
 * carry the tag `settled`.
 */
import { assign, emit, enqueueActions, fromPromise, setup, type SnapshotFrom } from 'xstate';
import type { PlanEntry } from './plan.js';
import { alive, type StartResult, type StopResult } from '../schemas/ports.js';
import { checkReady, untilExit } from './readiness.js';
import { ev, failure, inLane, need, prepareOptions, type VmContext, type VmEmitted, type VmMachineInput } from './vm-steps.js';

export type { VmEmitted, VmMachineInput, VmMachineOptions } from './vm-steps.js';

export const vmMachine = setup({
  types: {
    context: {} as VmContext,
    input: {} as VmMachineInput,
    emitted: {} as VmEmitted,
  },
  actors: {
    prepare: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => input.backend.prepare(input.project, need(input.vm, 'prepare'), prepareOptions(input), signal)),
    ),
    start: fromPromise<StartResult, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => input.backend.start(input.project, need(input.vm, 'start'), signal)),
    ),
    stop: fromPromise<StopResult | void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () =>
        input.backend.stop(
          input.project,
          input.name,
          // a stop that is followed by a start with new settings never saves: the state would be discarded
          {
            timeout: input.vm?.stopGracePeriod ?? 30,
            ...(input.vm?.stopMode === 'save' && input.afterStop === 'stopped' ? { save: true } : {}),
          },
          signal,
        ),
      ),
    ),
    destroy: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => input.backend.destroy(input.project, input.name, signal)),
    ),
    /** Running: check readiness only when it matters (just started, or provisioning is due). */
    check: fromPromise<{ due: boolean; checked: boolean }, VmContext>(({ input, signal }) =>
      inLane(input.lane, () => checkReady(input, signal)),
    ),
    provision: fromPromise<void, VmContext>(({ input, signal }) =>
      inLane(input.lane, () =>
        untilExit(input, signal, (s) =>
          input.guest.provision(input.project, need(input.vm, 'provision'), { force: input.options.forceProvision ?? false }, s),
        ),
      ),
    ),
  },
  guards: {
    isAction: ({ context }, params: { action: PlanEntry['action'] }) => context.entry.action === params.action,
    isDestroyCommand: ({ context }) => context.command === 'destroy',
    observedRunning: ({ context }) => context.observed?.power === 'running',
    observedPaused: ({ context }) => context.observed?.power === 'paused',
    keepsRunning: ({ context }) => context.entry.action === 'reseed' && alive(context.observed?.power) && !context.startedHere,
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
    savedHere: false,
    provisionDue: false,
    readyChecked: false,
    error: null,
    failedIn: null,
    configFault: false,
    lane: { tail: Promise.resolve() },
  }),
  initial: 'Deciding',
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
        onError: { target: 'Failed', actions: assign(({ event }) => failure(event.error, 'Preparing')) },
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
                `${context.started?.restored ? 'restored from its saved state' : 'started'} (pid ${context.started?.pid}, ${context.started?.accel}, ${context.vm?.network.mode === 'tap' ? 'ssh at its bridge address' : `ssh on port ${context.started?.sshPort}`})`,
              ),
            ),
          ],
        },
        onError: { target: 'Failed', actions: assign(({ event }) => failure(event.error, 'Starting')) },
      },
    },
    Running: {
      invoke: {
        src: 'check',
        input: ({ context }) => context,
        onDone: [
          {
            guard: ({ event }) => event.output.due,
            target: 'Provisioning',
            actions: assign(({ event }) => ({ provisionDue: true, readyChecked: event.output.checked })),
          },
          { target: 'Ready', actions: assign(({ event }) => ({ provisionDue: false, readyChecked: event.output.checked })) },
        ],
        onError: { target: 'Failed', actions: assign(({ event }) => failure(event.error, 'Running')) },
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
        onError: { target: 'Failed', actions: assign(({ event }) => failure(event.error, 'Provisioning')) },
      },
    },
    Ready: {
      tags: ['settled', 'usable'],
      // A VM that was already Ready with nothing to do emits nothing: a resync stays silent.
      entry: enqueueActions(({ context, enqueue }) => {
        if (context.startedHere || context.provisionDue || context.readyChecked || context.entry.action !== 'none') {
          enqueue.emit(
            ev(
              context,
              'Normal',
              'VmReady',
              context.startedHere
                ? 'ready'
                : context.provisionDue
                  ? 'ready, provisioned'
                  : context.entry.action !== 'none'
                    ? 'ready, changes applied'
                    : 'ready (checked: readiness was not recorded for this boot)',
            ),
          );
        }
      }),
    },
    Paused: { tags: ['settled'] },
    Stopping: {
      entry: emit(({ context }) =>
        ev(
          context,
          'Normal',
          'VmStopping',
          context.vm?.stopMode === 'save' && context.afterStop === 'stopped'
            ? 'saving its memory and stopping'
            : context.entry.reason && context.afterStop === 'prepare'
              ? `${context.entry.reason}: restarting (grace period ${context.vm?.stopGracePeriod ?? 30} s)`
              : `stopping (grace period ${context.vm?.stopGracePeriod ?? 30} s)`,
        ),
      ),
      invoke: {
        src: 'stop',
        input: ({ context }) => context,
        onDone: [
          {
            guard: 'afterStopPrepare',
            target: 'Preparing',
            actions: emit(({ context }) =>
              ev(context, 'Normal', 'VmStopped', context.entry.reason ? 'stopped, to start it again' : 'stopped to apply changes'),
            ),
          },
          {
            target: 'Stopped',
            actions: [
              assign(({ event }) => ({ savedHere: event.output?.saved === true })),
              emit(({ context }) => ev(context, 'Normal', 'VmStopped', context.savedHere ? 'stopped, memory saved' : 'stopped')),
            ],
          },
        ],
        onError: { target: 'Failed', actions: assign(({ event }) => failure(event.error, 'Stopping')) },
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
        onError: { target: 'Failed', actions: assign(({ event }) => failure(event.error, 'Destroying')) },
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
  /** Failed because of the project's files (terminal for `tend watch` until they change) */
  configFault?: true;
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
      if (alive(ctx.observed?.power)) conditions.push('Running');
      break;
    case 'Orphan':
      conditions.push('Orphan');
      if (alive(ctx.observed?.power)) conditions.push('Running');
      break;
    case 'Stopped':
      conditions.push('Stopped');
      if (ctx.observed?.intent === 'stopped') conditions.push('StopIntent');
      if (ctx.savedHere || (ctx.observed?.saved && !ctx.startedHere)) conditions.push('Saved');
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
  if (state !== 'Failed' || !ctx.error) return { state, conditions };
  return { state, error: ctx.error, conditions, ...(ctx.configFault ? { configFault: true as const } : {}) };
}

/** True once the machine reached a state it rests in (Ready, Stopped, Failed, ...). */
export function isSettled(snap: VmSnapshot): boolean {
  return snap.hasTag('settled');
}
