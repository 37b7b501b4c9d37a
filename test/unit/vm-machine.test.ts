import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, waitFor } from 'xstate';
import { isSettled, vmMachine, vmStatus, type VmMachineInput } from '../../controllers/vm-machine.js';
import type { PlanEntry } from '../../controllers/plan.js';
import type { ObservedVm } from '../../schemas/ports.js';
import type { VmSpec } from '../../schemas/model.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { project, spec, until } from '../helpers/controller-fixtures.js';

const entry = (vm: string, action: PlanEntry['action'], changed: string[] = [], notes: string[] = []): PlanEntry => ({
  vm,
  action,
  changed,
  notes,
});

function input(backend: MemoryBackend, vm: VmSpec | null, e: PlanEntry, observed?: ObservedVm): VmMachineInput {
  const p = project(vm ? [vm] : []);
  return { project: p, vm, entry: e, observed, options: { provision: true }, backend, guest: backend, clock: new ManualClock() };
}

async function observedOf(backend: MemoryBackend, name: string): Promise<ObservedVm | undefined> {
  return (await backend.observe(project([]))).vms[name];
}

function start(i: VmMachineInput) {
  const actor = createActor(vmMachine, { input: i });
  const states: string[] = [];
  const reasons: string[] = [];
  actor.subscribe((s) => states.push(String(s.value)));
  actor.on('tend', (e) => reasons.push(e.event.reason));
  actor.start();
  return { actor, states, reasons, settled: () => waitFor(actor, isSettled) };
}

test('create walks Preparing → Prepared → Starting → Running → Provisioning → Ready', async () => {
  const backend = new MemoryBackend();
  const vm = spec('web', { provision: [{ kind: 'shell', inline: ['true'] }] });
  const { states, reasons, settled } = start(input(backend, vm, entry('web', 'create')));
  const snap = await settled();
  assert.deepEqual(vmStatus(snap), { state: 'Ready', conditions: ['Ready'] });
  const seen = states.filter((s, i) => s !== states[i - 1]);
  for (const s of ['Preparing', 'Starting', 'Running', 'Provisioning', 'Ready'])
    assert.ok(seen.includes(s), `${s} not in ${seen.join(' → ')}`);
  assert.deepEqual(reasons, ['VmPreparing', 'VmPrepared', 'VmStarting', 'VmStarted', 'VmProvisioning', 'VmProvisioned', 'VmReady']);
});

test('every failing side effect ends in Failed with the message (Starting, Running, Provisioning, Stopping)', async () => {
  const vm = spec('web', { provision: [{ kind: 'shell', inline: ['false'] }] });
  for (const [method, failedIn] of [
    ['start', 'Starting'],
    ['waitReady', 'Running'],
    ['provision', 'Provisioning'],
  ] as const) {
    const backend = new MemoryBackend();
    backend.failOn(method, 'web', `${method} broke`);
    const { settled, reasons } = start(input(backend, vm, entry('web', 'create')));
    const snap = await settled();
    assert.deepEqual(vmStatus(snap), { state: 'Failed', error: `${method} broke`, conditions: [`Failed: ${method} broke`] });
    assert.equal(snap.context.failedIn, failedIn);
    assert.equal(reasons.at(-1), 'VmFailed');
  }
  const backend = new MemoryBackend();
  backend.seed('web', { applied: vm });
  backend.failOn('stop', 'web', 'QMP socket gone');
  const { settled } = start(input(backend, vm, entry('web', 'stop'), await observedOf(backend, 'web')));
  assert.equal(vmStatus(await settled()).error, 'QMP socket gone');
});

test('after a restart of tend the actor is rebuilt from observation: a running, converged VM is Ready with no calls', async () => {
  const backend = new MemoryBackend();
  const vm = spec('web');
  backend.seed('web', { applied: vm });
  const { settled } = start(input(backend, vm, entry('web', 'none'), await observedOf(backend, 'web')));
  assert.equal(vmStatus(await settled()).state, 'Ready');
  assert.deepEqual(backend.calls(), ['observe *'], 'no backend or guest call beyond the observation');
});

test('report-only entries leave the VM as it is', async () => {
  const backend = new MemoryBackend();
  backend.seed('web', { applied: spec('web') });
  const obs = await observedOf(backend, 'web');
  const held = start(input(backend, spec('web'), entry('web', 'recreate-required', ['image: debian:12 → alpine']), obs));
  assert.deepEqual(vmStatus(await held.settled()).conditions, ['RecreateRequired', 'Running']);
  const orphan = start(input(backend, null, entry('web', 'orphan'), obs));
  assert.deepEqual(vmStatus(await orphan.settled()).conditions, ['Orphan', 'Running']);
  assert.deepEqual(backend.mutatingCalls(), []);
});

test('reseed writes a new seed and does not restart the running VM', async () => {
  const backend = new MemoryBackend();
  backend.seed('web', { applied: spec('web') });
  const pid = backend.vms.get('web')!.pid;
  const { settled } = start(input(backend, spec('web'), entry('web', 'reseed', ['cloudInit: ...']), await observedOf(backend, 'web')));
  assert.equal(vmStatus(await settled()).state, 'Ready');
  assert.deepEqual(backend.mutatingCalls(), ['prepare web']);
  assert.equal(backend.vms.get('web')!.pid, pid);
});

test('a stopped VM desired stopped stays Stopped; a stop entry stops it', async () => {
  const backend = new MemoryBackend();
  backend.seed('web', { applied: spec('web'), power: 'stopped', pid: null, intent: 'stopped' });
  const a = start(input(backend, spec('web'), entry('web', 'none'), await observedOf(backend, 'web')));
  assert.deepEqual(vmStatus(await a.settled()).conditions, ['Stopped', 'StopIntent']);
  assert.deepEqual(backend.mutatingCalls(), []);

  backend.seed('db', { applied: spec('db') });
  const b = start(
    input(backend, spec('db', { runState: 'stopped', stopGracePeriod: 5 }), entry('db', 'stop'), await observedOf(backend, 'db')),
  );
  await b.settled();
  assert.deepEqual(backend.mutatingCalls(), ['stop db']);
  assert.deepEqual(backend.log.find((r) => r.method === 'stop')?.detail, { timeout: 5 });
  await until(() => backend.inFlight === 0);
});

test('a Ready VM with a declared healthcheck shows the Healthy condition', () => {
  const hc = { test: ['true'], interval: 1, retries: 1, startPeriod: 0, timeout: 1 };
  const snap = (healthcheck: typeof hc | null) =>
    ({ value: 'Ready', context: { vm: { healthcheck }, error: null, observed: undefined } }) as unknown as Parameters<typeof vmStatus>[0];
  assert.deepEqual(vmStatus(snap(hc)).conditions, ['Ready', 'Healthy']);
  assert.deepEqual(vmStatus(snap(null)).conditions, ['Ready']);
});
