import { test } from 'node:test';
import assert from 'node:assert/strict';
import { converge, type ControllerDeps } from '../../controllers/reconciler.js';
import { destroyVm, downProject, restartVm, resumeVm, startVm, stopVm, suspendVm } from '../../controllers/imperative.js';
import { TendError } from '../../schemas/errors.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { collector, project, spec, until } from '../helpers/controller-fixtures.js';
import type { Project } from '../../schemas/model.js';

const flags = { recreate: false, prune: false, provision: true };

function setup(): { backend: MemoryBackend; deps: ControllerDeps; clock: ManualClock } {
  const clock = new ManualClock();
  const backend = new MemoryBackend({ now: () => clock.now() });
  return { backend, clock, deps: { backend, guest: backend, clock } };
}

const provisioned = spec('web', { provision: [{ kind: 'shell', inline: ['apt-get install -y nginx'] }] });

test('create → Ready: prepare, start, wait for the guest, provision, in that order', async () => {
  const { backend, deps } = setup();
  const ev = collector();
  const res = await converge(project([provisioned]), deps, { ...flags, onEvent: ev.onEvent });
  assert.equal(res.ok, true);
  assert.deepEqual(res.vms.web, { state: 'Ready', conditions: ['Ready'] });
  assert.deepEqual(
    res.entries.map((e) => e.action),
    ['create'],
  );
  assert.deepEqual(
    backend.calls((r) => r.vm === 'web' && r.method !== 'provisionPending'),
    ['prepare web', 'start web', 'markReady web', 'waitReady web', 'markReady web', 'provision web'],
  );
  const prep = backend.log.find((r) => r.method === 'prepare' && r.phase === 'begin');
  assert.equal((prep?.detail as { recreateDisk: boolean }).recreateDisk, false);
  for (const reason of ['VmPreparing', 'VmStarted', 'VmProvisioning', 'VmReady'])
    assert.ok(ev.reasons('web').includes(reason), `missing ${reason} in ${ev.reasons('web').join(',')}`);
  assert.ok(ev.events.every((e) => /^[A-Z][A-Za-z]+$/.test(e.reason)));
});

test('converging twice: the second run makes no mutating call and no SSH round trip', async () => {
  const { backend, deps } = setup();
  const p = project([provisioned, spec('db')]);
  await converge(p, deps, flags);
  const before = backend.log.length;
  const ev = collector();
  const res = await converge(p, deps, { ...flags, onEvent: ev.onEvent });
  assert.deepEqual(ev.reasons(), [], 'a converged project produces no events');
  const second = backend.log.slice(before).filter((r) => r.phase === 'begin');
  assert.deepEqual(
    res.entries.map((e) => e.action),
    ['none', 'none'],
  );
  assert.deepEqual(
    second.filter((r) => ['prepare', 'start', 'stop', 'destroy', 'setIntent', 'provision', 'waitReady'].includes(r.method)),
    [],
  );
  assert.equal(res.ok, true);
  assert.equal(res.vms.web?.state, 'Ready');
  assert.equal(res.vms.db?.state, 'Ready');
});

test('a provision step added to a running VM is applied live: readiness checked, provisioned, no restart', async () => {
  const { backend, deps } = setup();
  await converge(project([spec('web')]), deps, flags);
  const before = backend.log.length;
  const res = await converge(project([provisioned]), deps, flags);
  const calls = backend.log
    .slice(before)
    .filter((r) => r.phase === 'begin' && r.method !== 'observe' && r.method !== 'markReady')
    .map((r) => r.method);
  assert.deepEqual(calls, ['provisionPending', 'waitReady', 'provision']);
  assert.equal(res.vms.web?.state, 'Ready');
  // the guest is told provisioning follows (it keeps its readiness connection for it)
  const wait = backend.log.slice(before).find((r) => r.phase === 'begin' && r.method === 'waitReady');
  assert.deepEqual(wait?.detail, { provisionNext: true });
  // and with --no-provision nothing is due
  const b2 = setup();
  await converge(project([spec('web')]), b2.deps, flags);
  const n = b2.backend.log.length;
  await converge(project([provisioned]), b2.deps, { ...flags, provision: false });
  assert.deepEqual(
    b2.backend.log.slice(n).filter((r) => r.phase === 'begin' && r.method !== 'observe'),
    [],
  );
});

test('changed memory restarts the VM and keeps its disk', async () => {
  const { backend, deps } = setup();
  await converge(project([spec('web')]), deps, flags);
  const disk = backend.vms.get('web')!.disk;
  const before = backend.log.length;
  const res = await converge(project([spec('web', { memory: 2048 })]), deps, flags);
  assert.deepEqual(
    res.entries.map((e) => e.action),
    ['restart'],
  );
  const calls = backend.log
    .slice(before)
    .filter((r) => r.phase === 'begin' && !['observe', 'provisionPending', 'markReady'].includes(r.method));
  assert.deepEqual(
    calls.map((r) => r.method),
    ['stop', 'prepare', 'start', 'waitReady'],
  );
  assert.equal((calls[1]!.detail as { recreateDisk: boolean }).recreateDisk, false);
  assert.equal(backend.vms.get('web')!.disk, disk, 'disk kept');
  assert.equal(backend.vms.get('web')!.applied?.memory, 2048);
  assert.equal(res.vms.web?.state, 'Ready');
});

test('a new image without --recreate: RecreateRequired, ok=false, the VM is left running untouched', async () => {
  const { backend, deps } = setup();
  await converge(project([spec('web')]), deps, flags);
  const before = backend.log.length;
  const ev = collector();
  const changed = project([spec('web', { image: { kind: 'catalog', ref: 'ubuntu:noble', format: null, checksum: null, os: null } })]);
  const res = await converge(changed, deps, { ...flags, onEvent: ev.onEvent });
  assert.equal(res.ok, false);
  assert.equal(res.vms.web?.state, 'RecreateRequired');
  assert.deepEqual(res.vms.web?.conditions, ['RecreateRequired', 'Running']);
  assert.deepEqual(
    backend.log.slice(before).filter((r) => r.phase === 'begin' && r.method !== 'observe'),
    [],
  );
  assert.equal(backend.vms.get('web')!.power, 'running');
  assert.equal(backend.vms.get('web')!.diskImage, 'debian:12');
  assert.ok(ev.reasons('web').includes('RecreateRequired'));
});

test('a new image with --recreate (or on a disposable VM) replaces the disk', async () => {
  for (const [label, disposable, recreate] of [
    ['--recreate', false, true],
    ['disposable', true, false],
  ] as const) {
    const { backend, deps } = setup();
    await converge(project([spec('web', { disposable })]), deps, flags);
    const disk = backend.vms.get('web')!.disk;
    const img = { kind: 'catalog' as const, ref: 'ubuntu:noble', format: null, checksum: null, os: null };
    const res = await converge(project([spec('web', { disposable, image: img })]), deps, { ...flags, recreate });
    assert.equal(res.ok, true, label);
    assert.equal(res.vms.web?.state, 'Ready', label);
    const prep = backend.log.filter((r) => r.method === 'prepare' && r.phase === 'begin').at(-1)!;
    assert.equal((prep.detail as { recreateDisk: boolean }).recreateDisk, true, label);
    assert.equal(backend.vms.get('web')!.disk, disk + 1, label);
    assert.equal(backend.vms.get('web')!.diskImage, 'ubuntu:noble', label);
  }
});

test('a VM removed from the file is reported as an orphan, and deleted only with --prune', async () => {
  const { backend, deps } = setup();
  backend.seed('old', { applied: spec('old') });
  const ev = collector();
  const res = await converge(project([]), deps, { ...flags, onEvent: ev.onEvent });
  assert.equal(res.ok, true);
  assert.deepEqual(res.vms.old, { state: 'Orphan', conditions: ['Orphan', 'Running'] });
  assert.ok(ev.reasons('old').includes('OrphanFound'));
  assert.deepEqual(backend.mutatingCalls(), []);

  const pruned = await converge(project([]), deps, { ...flags, prune: true, onEvent: ev.onEvent });
  assert.equal(pruned.vms.old?.state, 'Destroyed');
  assert.deepEqual(backend.mutatingCalls(), ['destroy old']);
  assert.ok(ev.reasons('old').includes('VmPruned'));
  assert.equal(backend.vms.has('old'), false);
});

test('a stop intent is honoured: converge does not start the VM until `tend start` clears it', async () => {
  const { backend, deps } = setup();
  const p = project([spec('web')]);
  await converge(p, deps, flags);
  const stopped = await stopVm(p, deps, 'web');
  assert.equal(stopped.state, 'Stopped');
  assert.deepEqual(backend.mutatingCalls(), ['prepare web', 'start web', 'setIntent web', 'stop web'], 'intent recorded before stopping');

  const res = await converge(p, deps, flags);
  assert.deepEqual(res.vms.web, { state: 'Stopped', conditions: ['Stopped', 'StopIntent'] });
  assert.equal(backend.calls((r) => r.method === 'start').length, 1, 'not started again');
  assert.equal(backend.vms.get('web')!.power, 'stopped');

  const started = await startVm(p, deps, 'web');
  assert.equal(started.vms.web?.state, 'Ready');
  assert.equal(backend.vms.get('web')!.intent, null);
  assert.equal(backend.vms.get('web')!.power, 'running');
});

test('depends_on: web is not started before db is Ready', async () => {
  const { backend, deps } = setup();
  const held = backend.hold('waitReady', 'db');
  const run = converge(project([spec('web', { dependsOn: ['db'] }), spec('db')]), deps, flags);
  await held.reached;
  for (let i = 0; i < 50; i++) await new Promise<void>((r) => setImmediate(r));
  assert.deepEqual(
    backend.calls((r) => r.vm === 'web'),
    [],
    'web waits while db is not ready',
  );
  held.release();
  const res = await run;
  assert.equal(res.ok, true);
  assert.ok(backend.seqOf('prepare', 'web') > backend.seqOf('waitReady', 'db', 'end'));
});

test('independent VMs are started concurrently', async () => {
  const { backend, deps } = setup();
  const a = backend.hold('start', 'a');
  const b = backend.hold('start', 'b');
  const run = converge(project([spec('a'), spec('b')]), deps, flags);
  // both starts are in flight at the same time: each is held until released
  await Promise.all([a.reached, b.reached]);
  assert.equal(backend.inFlight, 2);
  a.release();
  b.release();
  const res = await run;
  assert.equal(res.ok, true);
  assert.ok(backend.seqOf('start', 'b') < backend.seqOf('start', 'a', 'end'));
});

test('a failed dependency blocks its dependents with a clear message', async () => {
  const { backend, deps } = setup();
  backend.failOn('start', 'db', 'qemu-system-x86_64 exited with status 1');
  const ev = collector();
  const res = await converge(
    project([spec('web', { dependsOn: ['api'] }), spec('api', { dependsOn: ['db'] }), spec('db'), spec('cache')]),
    deps,
    { ...flags, onEvent: ev.onEvent },
  );
  assert.equal(res.ok, false);
  assert.equal(res.vms.db?.state, 'Failed');
  assert.equal(res.vms.api?.state, 'Blocked');
  assert.equal(res.vms.api?.error, 'waiting on db, which failed: qemu-system-x86_64 exited with status 1');
  assert.match(res.vms.web?.error ?? '', /^waiting on api, which is blocked \(waiting on db, which failed: /);
  assert.equal(res.vms.cache?.state, 'Ready', 'independent VMs are not held back');
  assert.deepEqual(
    backend.calls((r) => r.vm === 'web' || r.vm === 'api'),
    [],
  );
  assert.ok(ev.events.some((e) => e.vm === 'api' && e.reason === 'DependencyNotReady' && e.type === 'Warning'));
});

test('`tend up web` also brings up what web depends on', async () => {
  const { backend, deps } = setup();
  const res = await converge(project([spec('web', { dependsOn: ['db'] }), spec('db'), spec('other')]), deps, { ...flags, names: ['web'] });
  assert.deepEqual(Object.keys(res.vms).sort(), ['db', 'web']);
  assert.equal(backend.calls((r) => r.vm === 'other').length, 0);
  await assert.rejects(converge(project([spec('web')]), deps, { ...flags, names: ['wbe'] }), /no VM named "wbe".*did you mean "web"/);
});

test('a failing backend call → Failed with its message, and ok=false', async () => {
  const { backend, deps } = setup();
  backend.failOn('prepare', 'web', 'image debian:12: sha256 mismatch');
  const ev = collector();
  const res = await converge(project([spec('web')]), deps, { ...flags, onEvent: ev.onEvent });
  assert.equal(res.ok, false);
  assert.deepEqual(res.vms.web, {
    state: 'Failed',
    error: 'image debian:12: sha256 mismatch',
    conditions: ['Failed: image debian:12: sha256 mismatch'],
  });
  const failed = ev.events.find((e) => e.reason === 'VmFailed');
  assert.equal(failed?.type, 'Warning');
  assert.match(failed?.message ?? '', /Preparing failed: image debian:12: sha256 mismatch/);
  assert.deepEqual(
    backend.calls((r) => r.method === 'start'),
    [],
  );
});

test('aborting converge settles promptly: in-flight calls are aborted, nothing dangles', async () => {
  const { backend, deps } = setup();
  backend.hangOn('start', 'web');
  const ctl = new AbortController();
  const run = converge(project([spec('web'), spec('db', { dependsOn: ['web'] })]), deps, { ...flags, signal: ctl.signal });
  await until(() => backend.inFlight === 1 && backend.seqOf('start', 'web') >= 0, 'start in flight');
  ctl.abort();
  await assert.rejects(run, (e: unknown) => e instanceof TendError && e.reason === 'Aborted');
  assert.equal(backend.inFlight, 0);
  assert.equal(backend.signals.get('start:web')?.aborted, true);
  assert.ok(backend.log.some((r) => r.method === 'start' && r.phase === 'abort'));
  assert.deepEqual(
    backend.calls((r) => r.vm === 'db'),
    [],
    'the dependent never started',
  );
});

test('down stops dependents before their dependencies; volumes are deleted only when asked', async () => {
  const { backend, deps } = setup();
  const withVol = spec('db', { volumes: [{ kind: 'named', name: 'data', target: '/var/lib/db', readOnly: false }] });
  const p: Project = project([spec('web', { dependsOn: ['db'] }), withVol], { data: { size: 1 } });
  await converge(p, deps, flags);
  const res = await downProject(p, deps, { destroy: false, volumes: false });
  assert.equal(res.ok, true);
  assert.ok(backend.seqOf('stop', 'db') > backend.seqOf('stop', 'web', 'end'));
  assert.deepEqual(backend.volumesRemoved, []);
  assert.equal(backend.vms.get('db')!.power, 'stopped');
  // each VM keeps a stop intent: a watch pass (a converge that does not clear intents) leaves them down
  assert.deepEqual([backend.vms.get('web')!.intent, backend.vms.get('db')!.intent], ['stopped', 'stopped']);
  const watchPass = await converge(p, deps, flags);
  assert.deepEqual(
    watchPass.entries.map((e) => e.action),
    ['none', 'none'],
  );
  assert.equal(backend.vms.get('web')!.power, 'stopped');

  const gone = await downProject(p, deps, { destroy: true, volumes: true });
  assert.equal(gone.vms.web?.state, 'Destroyed');
  assert.ok(
    [...backend.vms.values()].every((v) => !v.exists && v.intent === 'stopped'),
    'disks gone, intents kept',
  );
  assert.deepEqual(backend.volumesRemoved, ['data']);
  assert.deepEqual(
    (await converge(p, deps, flags)).entries.map((e) => e.action),
    ['none', 'none'],
    "not recreated behind the user's back",
  );

  // a `tend run` VM destroyed with its file leaves nothing behind
  const adhoc = project([spec('adhoc')]);
  await converge(adhoc, deps, flags);
  await downProject(adhoc, deps, { destroy: true, volumes: false, intent: false });
  assert.equal(backend.vms.has('adhoc'), false);
});

test('after `tend down`, starting a VM also clears the stop intents of what it depends on', async () => {
  const { backend, deps } = setup();
  const p: Project = project([spec('web', { dependsOn: ['db'] }), spec('db'), spec('cache')]);
  await converge(p, deps, flags);
  await downProject(p, deps, { destroy: false, volumes: false });
  const r = await startVm(p, deps, 'web');
  assert.equal(r.ok, true, JSON.stringify(r.vms));
  assert.deepEqual([backend.vms.get('web')!.power, backend.vms.get('db')!.power], ['running', 'running']);
  assert.equal(backend.vms.get('db')!.intent, null);
  assert.equal(backend.vms.get('cache')!.intent, 'stopped', 'a VM web does not need stays down');
});

test('restart keeps the disk and clears a stop intent', async () => {
  const { backend, deps } = setup();
  const p = project([spec('web')]);
  await converge(p, deps, flags);
  const disk = backend.vms.get('web')!.disk;
  await backend.setIntent(p, 'web', 'stopped');
  const r = await restartVm(p, deps, 'web');
  assert.equal(r.state, 'Ready');
  assert.equal(backend.vms.get('web')!.disk, disk);
  assert.equal(backend.vms.get('web')!.intent, null);
  assert.deepEqual(backend.calls((x) => x.method === 'stop' || x.method === 'start').slice(-2), ['stop web', 'start web']);
});

test('suspend and resume one VM; converge leaves a paused VM paused; destroy deletes it', async () => {
  const { backend, deps } = setup();
  const p = project([spec('web')]);
  await converge(p, deps, flags);
  assert.deepEqual(await suspendVm(p, deps, 'web'), { state: 'Paused', conditions: ['Paused'] });
  const res = await converge(p, deps, flags);
  assert.equal(res.vms.web?.state, 'Paused');
  assert.equal(backend.vms.get('web')!.power, 'paused');
  await resumeVm(p, deps, 'web');
  assert.equal(backend.vms.get('web')!.power, 'running');
  const gone = await destroyVm(p, deps, 'web');
  assert.equal(gone.state, 'Destroyed');
  assert.equal(backend.vms.has('web'), false);
  await assert.rejects(suspendVm(p, deps, 'web'), /web is not running/);
});

test('False Ready: a VM whose readiness failed, or was never recorded for this boot, is checked again', async () => {
  const { backend, deps } = setup();
  backend.failOn('waitReady', 'web', 'web: no SSH banner on 127.0.0.1:2222 within 3 s');
  const first = await converge(project([spec('web')]), deps, flags);
  assert.equal(first.vms.web?.state, 'Failed');
  // the second converge must not say Ready without observing it
  const second = await converge(project([spec('web')]), deps, flags);
  assert.equal(second.vms.web?.state, 'Failed', 'not Ready: the guest still does not answer');
  assert.equal(backend.calls((r) => r.method === 'waitReady').length, 2, 'checked again');
  // once it answers, it is Ready, and then a converge skips the round trip (same boot, Ready before)
  const fixed = setup();
  fixed.backend.seed('web', { applied: spec('web'), ready: false }); // a tend killed during the SSH wait
  assert.equal((await converge(project([spec('web')]), fixed.deps, flags)).vms.web?.state, 'Ready');
  assert.equal(fixed.backend.calls((r) => r.method === 'waitReady').length, 1, 'checked, since no readiness was recorded');
  assert.equal(
    (fixed.backend.log.find((r) => r.phase === 'begin' && r.method === 'waitReady')?.detail as { provisionNext?: boolean } | undefined)
      ?.provisionNext,
    undefined,
    'nothing to provision: the guest keeps no connection',
  );
  assert.equal((await converge(project([spec('web')]), fixed.deps, flags)).vms.web?.state, 'Ready');
  assert.equal(fixed.backend.calls((r) => r.method === 'waitReady').length, 1, 'Ready before, same boot: no SSH round trip');
  // a new boot (another process) is not the boot that was seen Ready
  const s = fixed.backend.vms.get('web')!;
  s.pid = 4242;
  s.ready = false;
  await converge(project([spec('web')]), fixed.deps, flags);
  assert.equal(fixed.backend.calls((r) => r.method === 'waitReady').length, 2);
});

test('an exit during readiness fails the step at once with the exit, not after the time limit', async () => {
  const { backend, deps } = setup();
  backend.watchExits = true;
  backend.hangOn('waitReady', 'web'); // an SSH wait that would last until its time limit
  const run = converge(project([spec('web')]), deps, flags);
  await until(() => backend.exitWatches.some((w) => w.vm === 'web'), 'the exit watch during the wait');
  const pid = backend.kill('web');
  const res = await run;
  assert.equal(res.vms.web?.state, 'Failed');
  assert.match(
    res.vms.web?.error ?? '',
    new RegExp(`web: its process was killed or crashed \\(pid ${pid}\\) while tend waited for the guest`),
  );
  assert.equal(backend.exitWatches.length, 0, 'the exit watch ends with the step');
  assert.equal(backend.vms.get('web')?.ready, false);
});

test('stop: save asks the backend to save on a stop by intent (stop, down, watch), never on a restart', async () => {
  const { backend, deps } = setup();
  const p = project([spec('web', { stopMode: 'save' })]);
  await converge(p, deps, flags);
  const stopped = await stopVm(p, deps, 'web');
  assert.deepEqual(stopped.conditions, ['Stopped', 'StopIntent', 'Saved']);
  const stops = () => backend.log.filter((r) => r.method === 'stop' && r.phase === 'begin').map((r) => r.detail);
  assert.deepEqual(stops().at(-1), { timeout: 30, save: true });

  await startVm(p, deps, 'web');
  await restartVm(p, deps, 'web');
  assert.deepEqual(stops().at(-1), { timeout: 30 }, 'a restart powers off: the state would be discarded anyway');

  await downProject(p, deps, { destroy: false, volumes: false });
  assert.deepEqual(stops().at(-1), { timeout: 30, save: true });

  // without the policy: a plain stop
  const q = project([spec('web')]);
  await startVm(q, deps, 'web');
  await stopVm(q, deps, 'web');
  assert.deepEqual(stops().at(-1), { timeout: 30 });
});
