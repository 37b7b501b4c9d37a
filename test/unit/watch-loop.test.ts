import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWatch, type PassReport, type WatchDeps, type WatchLoad, type WatchOptions } from '../../controllers/watch-loop.js';
import type { Project } from '../../schemas/model.js';
import { NotFoundError } from '../../schemas/errors.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { collector, project, spec, until } from '../helpers/controller-fixtures.js';

function setup(initial: Project, o: Partial<WatchOptions> = {}) {
  const clock = new ManualClock();
  const mb = new MemoryBackend({ now: () => clock.now() });
  const ev = collector();
  const passes: PassReport[] = [];
  let next: WatchLoad = { project: initial, diagnostics: [] };
  let lockHeld = false;
  let locks = 0;
  const callsOutsideLock: string[] = [];
  const origCall = mb.log.push.bind(mb.log);
  mb.log.push = (...recs) => {
    for (const r of recs) if (r.phase === 'begin' && !lockHeld) callsOutsideLock.push(`${r.method} ${r.vm}`);
    return origCall(...recs);
  };
  const deps: WatchDeps = {
    backend: mb,
    guest: mb,
    clock,
    load: async () => next,
    withLock: async (fn) => {
      assert.equal(lockHeld, false, 'passes never overlap');
      lockHeld = true;
      locks++;
      try {
        return await fn();
      } finally {
        lockHeld = false;
      }
    },
  };
  const ac = new AbortController();
  const ctl = startWatch(
    initial,
    deps,
    {
      prune: false,
      recreate: false,
      provision: true,
      resyncMs: 0,
      debounceMs: 50,
      onEvent: ev.onEvent,
      onPass: (p) => passes.push(p),
      ...o,
    },
    ac.signal,
  );
  return {
    clock,
    mb,
    ev,
    passes,
    ctl,
    ac,
    callsOutsideLock,
    locks: () => locks,
    setNext: (l: WatchLoad) => (next = l),
    /** wait until `n` passes ran and nothing is in flight */
    passesDone: (n: number) => until(() => passes.length >= n && mb.inFlight === 0, `${n} passes`, 20000),
  };
}

const two = () => project([spec('web'), spec('db')]);

test('converges first, then an edit reconciles only the affected VM (debounced, under the lock)', async () => {
  const w = setup(two());
  await w.passesDone(1);
  assert.deepEqual(
    w.mb
      .mutatingCalls()
      .filter((c) => c.startsWith('start'))
      .sort(),
    ['start db', 'start web'],
  );
  const before = w.mb.log.length;
  w.setNext({ project: project([spec('web', { memory: 2048 }), spec('db')]), diagnostics: [] });
  w.ctl.filesChanged(['/p/tend.yaml']);
  w.ctl.filesChanged(['/p/tend.yaml']); // an editor's write + rename: one pass
  await until(() => w.clock.pendingSleeps > 0, 'debounce sleep');
  assert.equal(w.passes.length, 1, 'nothing happens before the debounce elapsed');
  w.clock.advance(50);
  await w.passesDone(2);
  const after = w.mb.log.slice(before).filter((r) => r.phase === 'begin' && r.method !== 'observe' && r.method !== 'setIntent');
  assert.ok(after.length > 0);
  assert.deepEqual([...new Set(after.map((r) => r.vm))], ['web'], 'only web is touched');
  assert.deepEqual(w.passes[1].names, ['web']);
  assert.equal(w.mb.vms.get('web')?.applied?.memory, 2048);
  assert.deepEqual(w.callsOutsideLock, []);
  assert.equal(w.locks(), 2, 'the lock is taken pass by pass');
  w.ac.abort();
  await w.ctl.done;
});

test('an invalid edit is reported with file:line:column and causes no backend call; the last valid state stays', async () => {
  const w = setup(two());
  await w.passesDone(1);
  const calls = w.mb.log.length;
  w.setNext({ project: null, diagnostics: [{ file: '/p/tend.yaml', line: 3, column: 7, message: 'memory is in MiB', severity: 'error' }] });
  w.ctl.filesChanged(['/p/tend.yaml']);
  await until(() => w.clock.pendingSleeps > 0, 'debounce');
  w.clock.advance(50);
  await until(() => w.ev.reasons().includes('ProjectInvalid'), 'ProjectInvalid');
  const e = w.ev.events.find((x) => x.reason === 'ProjectInvalid')!;
  assert.match(e.message, /\/p\/tend\.yaml:3:7: error: memory is in MiB/);
  assert.equal(w.mb.log.length, calls, 'no backend call at all');
  assert.equal(w.ctl.project.vms.length, 2, 'the last valid project is kept');
  // fixed again: only what differs from the last valid state is reconciled
  w.setNext({ project: project([spec('web'), spec('db', { cpus: 2 })]), diagnostics: [] });
  w.ctl.filesChanged(['/p/tend.yaml']);
  await until(() => w.clock.pendingSleeps > 0, 'debounce');
  w.clock.advance(50);
  await w.passesDone(2);
  assert.ok(w.ev.reasons().includes('ProjectValid'));
  assert.deepEqual(w.passes[1].names, ['db']);
  w.ac.abort();
  await w.ctl.done;
});

test('a deleted project file is reported, not taken as "delete every VM"', async () => {
  const w = setup(two(), { prune: true });
  await w.passesDone(1);
  const calls = w.mb.log.length;
  w.setNext({
    project: null,
    diagnostics: [{ file: '/p/tend.yaml', line: 1, column: 1, message: 'the file does not exist', severity: 'error' }],
  });
  w.ctl.filesChanged(['/p/tend.yaml']);
  await until(() => w.clock.pendingSleeps > 0, 'debounce');
  w.clock.advance(50);
  await until(() => w.ev.reasons().includes('ProjectFileMissing'), 'ProjectFileMissing');
  assert.match(w.ev.events.find((x) => x.reason === 'ProjectFileMissing')!.message, /no VM is deleted/);
  assert.equal(w.mb.log.length, calls);
  assert.equal(w.mb.vms.get('web')?.power, 'running');
  w.ac.abort();
  await w.ctl.done;
});

test('a crash is restarted at once, a crash loop waits longer each time', async () => {
  const w = setup(project([spec('web')]), { backoff: { baseMs: 1000, factor: 2, maxMs: 60_000, healthyMs: 60_000 } });
  await w.passesDone(1);
  const crash = (): void => {
    const s = w.mb.vms.get('web')!;
    const pid = s.pid!;
    s.power = 'stopped';
    s.pid = null;
    w.ctl.vmExited({ vm: 'web', pid, kind: 'failure' });
  };
  const starts = (): number => w.mb.calls((r) => r.method === 'start').length;
  crash();
  await until(() => starts() === 2 && w.mb.inFlight === 0, 'immediate restart');
  assert.ok(w.ev.reasons('web').includes('VmExited'));
  crash();
  await until(() => w.ev.reasons('web').includes('BackOff'), 'BackOff');
  assert.match(w.ev.events.find((e) => e.reason === 'BackOff')!.message, /restarting in 1s/);
  await until(() => w.clock.pendingSleeps > 0, 'backoff timer');
  assert.equal(starts(), 2, 'not restarted during the backoff');
  assert.equal(w.ctl.held.has('web'), true);
  w.clock.advance(1000);
  await until(() => starts() === 3 && w.mb.inFlight === 0, 'restart after backoff');
  crash();
  await until(() => w.ev.reasons('web').filter((r) => r === 'BackOff').length === 2, 'second BackOff');
  assert.match(w.ev.events.filter((e) => e.reason === 'BackOff')[1].message, /restarting in 2s/);
  w.ac.abort();
  await w.ctl.done;
});

test('restart policy "no" leaves the VM down, and resync does not start it', async () => {
  const w = setup(project([spec('web', { restart: 'no' }), spec('db')]), { resyncMs: 30_000 });
  await w.passesDone(1);
  const s = w.mb.vms.get('web')!;
  const pid = s.pid!;
  s.power = 'stopped';
  s.pid = null;
  w.ctl.vmExited({ vm: 'web', pid, kind: 'failure' });
  await until(() => w.ev.reasons('web').includes('VmExited'), 'VmExited');
  assert.match(w.ev.events.find((e) => e.reason === 'VmExited')!.message, /not restarted/);
  w.clock.advance(30_000);
  await w.passesDone(2);
  assert.deepEqual(w.passes[1].triggers, ['resync']);
  assert.deepEqual(w.passes[1].names, ['db']);
  assert.equal(w.mb.vms.get('web')?.power, 'stopped');
  w.ac.abort();
  await w.ctl.done;
});

test('`tend stop web` while watching: the intent is honoured by the exit and by resync', async () => {
  const w = setup(project([spec('web')]), { resyncMs: 30_000 });
  await w.passesDone(1);
  // what `tend stop web` does between passes: record the intent, then stop
  await w.mb.setIntent(w.ctl.project, 'web', 'stopped');
  const pid = w.mb.vms.get('web')!.pid!;
  await w.mb.stop(w.ctl.project, 'web', { timeout: 1 });
  w.ctl.vmExited({ vm: 'web', pid, kind: 'clean' });
  w.clock.advance(30_000);
  await w.passesDone(2);
  assert.equal(w.mb.vms.get('web')?.power, 'stopped');
  assert.equal(w.ev.reasons('web').includes('VmExited'), false, 'a deliberate stop is not a crash');
  // `tend start web` clears it; the next resync keeps it running
  await w.mb.setIntent(w.ctl.project, 'web', null);
  w.clock.advance(30_000);
  await w.passesDone(3);
  assert.equal(w.mb.vms.get('web')?.power, 'running');
  w.ac.abort();
  await w.ctl.done;
});

test('aborting mid-pass cancels the step in flight and ends the loop; VMs are left alone', async () => {
  const clockless = project([spec('web'), spec('db')]);
  const w = setup(clockless);
  await w.passesDone(1);
  w.setNext({ project: project([spec('web', { cpus: 4 }), spec('db')]), diagnostics: [] });
  const held = w.mb.hold('start', 'web');
  w.ctl.filesChanged(['/p/tend.yaml']);
  await until(() => w.clock.pendingSleeps > 0, 'debounce');
  w.clock.advance(50);
  await held.reached;
  w.ac.abort();
  await w.ctl.done;
  assert.equal(w.mb.signals.get('start:web')?.aborted, true);
  assert.equal(w.mb.inFlight, 0);
  assert.equal(w.mb.calls((r) => r.method === 'destroy').length, 0);
  assert.equal(w.mb.vms.get('db')?.power, 'running');
});

test('a VM that fails to start is retried with the crash-loop backoff, not in a tight loop', async () => {
  const clock = new ManualClock();
  const mb = new MemoryBackend({ now: () => clock.now() });
  mb.failOn('start', 'web', 'QEMU died during start');
  const ev = collector();
  const ac = new AbortController();
  const p = project([spec('web')]);
  const ctl = startWatch(
    p,
    { backend: mb, guest: mb, clock, load: (): WatchLoad => ({ project: p, diagnostics: [] }), withLock: (fn) => fn() },
    {
      prune: false,
      recreate: false,
      provision: true,
      resyncMs: 0,
      backoff: { baseMs: 1000, factor: 2, maxMs: 60_000, healthyMs: 60_000 },
      onEvent: ev.onEvent,
    },
    ac.signal,
  );
  const starts = (): number => mb.calls((r) => r.method === 'start').length;
  await until(
    () => starts() === 2 && mb.inFlight === 0 && ev.reasons('web').filter((r) => r === 'BackOff').length === 2,
    'first retry at once',
  );
  assert.match(ev.events.filter((e) => e.reason === 'BackOff')[1].message, /failure 2 in a row: retrying in 1s/);
  for (let i = 0; i < 50; i++) await new Promise<void>((r) => setImmediate(r));
  assert.equal(starts(), 2, 'waits for the backoff');
  clock.advance(1000);
  await until(() => starts() === 3, 'retry after 1s');
  ac.abort();
  await ctl.done;
});

test('reload (SIGHUP) reads the files again and reconciles only what changed, without waiting for the debounce', async () => {
  const w = setup(two());
  await w.passesDone(1);
  w.setNext({ project: project([spec('web'), spec('db', { memory: 4096 })]), diagnostics: [] });
  w.ctl.reload();
  await w.passesDone(2);
  assert.deepEqual(w.passes[1].triggers, ['reload']);
  assert.deepEqual(w.passes[1].names, ['db']);
  assert.equal(w.mb.vms.get('db')?.applied?.memory, 4096);
  w.ac.abort();
  await w.ctl.done;
});

test('a stream of saves is debounced but never holds reconciling off for long', async () => {
  const w = setup(two());
  await w.passesDone(1);
  w.setNext({ project: project([spec('web', { cpus: 2 }), spec('db')]), diagnostics: [] });
  // a save every 40 ms (inside the 50 ms debounce) for 2 s
  for (let t = 0; t < 2000 && w.passes.length < 2; t += 40) {
    w.ctl.filesChanged(['/p/tend.yaml']);
    await until(() => w.clock.pendingSleeps > 0, 'debounce sleep');
    w.clock.advance(40);
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  }
  await w.passesDone(2);
  assert.ok(w.clock.now() - Date.UTC(2026, 0, 1) <= 1100, 'reconciled within about a second of the first save');
  w.ac.abort();
  await w.ctl.done;
});

test('a VM removed from the file is reported as an orphan, and deleted only with --prune', async () => {
  for (const prune of [false, true]) {
    const w = setup(two(), { prune });
    await w.passesDone(1);
    w.setNext({ project: project([spec('web')]), diagnostics: [] });
    w.ctl.filesChanged(['/p/tend.yaml']);
    await until(() => w.clock.pendingSleeps > 0, 'debounce');
    w.clock.advance(50);
    await until(() => w.ev.reasons('db').includes('Orphaned'), 'Orphaned');
    if (prune) await w.passesDone(2);
    else for (let i = 0; i < 200; i++) await new Promise<void>((r) => setImmediate(r));
    assert.equal(w.mb.calls((r) => r.method === 'destroy' && r.vm === 'db').length, prune ? 1 : 0, `prune: ${prune}`);
    assert.equal(w.mb.vms.get('web')?.power, 'running');
    w.ac.abort();
    await w.ctl.done;
  }
});

test('a save in the middle of a pass cancels what the pass has not started; it is reconciled from the new files', async () => {
  const initial = project([spec('db'), spec('web', { dependsOn: ['db'] })]);
  const clock = new ManualClock();
  const mb = new MemoryBackend({ now: () => clock.now() });
  const dbStart = mb.hold('start', 'db');
  const passes: PassReport[] = [];
  let next: WatchLoad = { project: initial, diagnostics: [] };
  const ac = new AbortController();
  const ctl = startWatch(
    initial,
    { backend: mb, guest: mb, clock, load: () => next, withLock: (fn) => fn() },
    { prune: false, recreate: false, provision: true, resyncMs: 0, onPass: (p) => passes.push(p) },
    ac.signal,
  );
  await dbStart.reached;
  // web waits for db to be Ready; the file is saved meanwhile
  next = { project: project([spec('db'), spec('web', { dependsOn: ['db'], memory: 2048 })]), diagnostics: [] };
  ctl.filesChanged(['/p/tend.yaml']);
  dbStart.release();
  await until(() => passes.length === 1 && mb.inFlight === 0, 'the first pass');
  assert.deepEqual(passes[0].result?.cancelled, ['web']);
  assert.equal(passes[0].result?.vms.db?.state, 'Ready', 'what had started finished');
  assert.equal(mb.calls((r) => r.vm === 'web' && r.method !== 'observe').length, 0, 'web was not started with the old spec');
  clock.advance(50); // the debounce of the save
  await until(() => passes.length === 2 && mb.inFlight === 0, 'the pass of the save');
  assert.deepEqual(passes[1].triggers, ['files']);
  assert.deepEqual(passes[1].names, ['web']);
  assert.equal(passes[1].result?.vms.web?.state, 'Ready');
  assert.equal(mb.vms.get('web')?.applied?.memory, 2048, 'started once, from the new files');
  assert.equal(mb.calls((r) => r.method === 'start' && r.vm === 'web').length, 1);
  ac.abort();
  await ctl.done;
});

test('a config fault is terminal: not retried (not even by resync) until the files change', async () => {
  const w = setup(project([spec('web'), spec('db')]), { resyncMs: 30_000 });
  w.mb.failOn('prepare', 'web', new NotFoundError('ImageNotFound', 'the image file /img/web.qcow2 does not exist'));
  await w.passesDone(1);
  const prepares = (): number => w.mb.calls((r) => r.method === 'prepare' && r.vm === 'web').length;
  assert.equal(prepares(), 1);
  assert.match(w.ev.events.find((e) => e.reason === 'NotRetried')?.message ?? '', /does not exist.*not retried until they change/);
  assert.equal(w.ev.reasons('web').includes('BackOff'), false);
  assert.equal(w.ctl.held.has('web'), true);
  w.clock.advance(30_000);
  await w.passesDone(2);
  assert.deepEqual(w.passes[1].names, ['db'], 'resync skips it');
  assert.equal(prepares(), 1);
  // the file changes: tried again
  w.mb.failOn('prepare', 'web', new Error('disk full')); // now a transient fault: retried with backoff
  w.setNext({ project: project([spec('web', { cpus: 2 }), spec('db')]), diagnostics: [] });
  w.ctl.filesChanged(['/p/tend.yaml']);
  await until(() => w.clock.pendingSleeps > 1, 'debounce');
  w.clock.advance(50);
  await until(() => w.ev.reasons('web').includes('BackOff') && prepares() >= 3, 'tried again, then retried (a transient fault)');
  w.ac.abort();
  await w.ctl.done;
});

test('a VM killed while its guest is waited for is restarted at once, while another VM of the same pass still waits', async () => {
  const w = setup(project([spec('web'), spec('db')]));
  w.mb.watchExits = true;
  w.mb.hangOn('waitReady', 'db'); // db's guest never answers: the pass cannot end
  const webWait = w.mb.hold('waitReady', 'web');
  await webWait.reached;
  const starts = (): number => w.mb.calls((r) => r.method === 'start' && r.vm === 'web').length;
  assert.equal(starts(), 1);
  const pid = w.mb.kill('web');
  await until(() => starts() === 2 && w.mb.vms.get('web')?.power === 'running', 'web restarted in the same pass');
  await until(() => w.mb.vms.get('web')?.ready === true, 'web Ready again');
  assert.equal(w.passes.length, 0, 'the first pass is still waiting for db');
  assert.notEqual(w.mb.vms.get('web')?.pid, pid);
  assert.match(w.ev.events.find((e) => e.reason === 'VmFailed' && e.vm === 'web')?.message ?? '', /killed or crashed/);
  assert.match(w.ev.events.find((e) => e.reason === 'BackOff' && e.vm === 'web')?.message ?? '', /failure 1 in a row: retrying now/);
  w.ac.abort();
  await w.ctl.done;
});

test('a VM seen running without a pid (its QEMU gone, the domain not yet) is looked at again soon and restarted', async () => {
  const ev = collector();
  let dying = false;
  const ref: { w?: ReturnType<typeof setup> } = {};
  // libvirt in the middle of `virsh destroy`: the domain still says running, its QEMU is gone
  const onEvent = (e: Parameters<typeof ev.onEvent>[0]): void => {
    ev.onEvent(e);
    if (e.reason !== 'Reconciled' || dying) return;
    dying = true;
    ref.w!.mb.vms.get('web')!.pid = null;
  };
  const w = (ref.w = setup(project([spec('web')]), { onEvent }));
  w.mb.watchExits = true;
  const starts = (): number => w.mb.calls((r) => r.method === 'start').length;
  await until(() => dying && w.mb.inFlight === 0 && w.clock.pendingSleeps > 0, 'the first pass, then a wait to look again');
  assert.equal(starts(), 1);
  assert.equal(w.mb.exitWatches.length, 0, 'nothing to watch without a pid');
  // the destroy completes: the domain is shut off
  const s = w.mb.vms.get('web')!;
  s.power = 'stopped';
  s.ready = false;
  w.clock.advance(250);
  await until(() => starts() === 2 && w.mb.inFlight === 0, 'restart without a resync (resyncMs 0)');
  assert.ok(ev.reasons('web').includes('VmExited'));
  w.ac.abort();
  await w.ctl.done;
});

test('a resync pass that waits on a VM seen running without a pid hears its end by name and restarts it', async () => {
  const w = setup(project([spec('web')]), { resyncMs: 30_000 });
  w.mb.watchExits = true;
  await w.passesDone(1);
  const starts = (): number => w.mb.calls((r) => r.method === 'start').length;
  assert.equal(starts(), 1);
  // libvirt mid-destroy when the resync observes: the domain runs, its QEMU is gone, not Ready
  const s = w.mb.vms.get('web')!;
  s.pid = null;
  s.ready = false;
  const wait = w.mb.hold('waitReady', 'web'); // the resync waits for the guest (it never answers)
  w.clock.advance(30_000);
  await wait.reached;
  assert.ok(
    w.mb.exitWatches.some((x) => x.vm === 'web' && x.pid === 0),
    `the wait watches the VM by name: ${JSON.stringify(w.mb.exitWatches.map((x) => [x.vm, x.pid]))}`,
  );
  w.mb.kill('web'); // the destroy completes: the domain's end is reported by name
  await until(() => starts() === 2 && w.mb.vms.get('web')?.ready === true, 'restarted and Ready in the same pass');
  assert.match(w.ev.events.find((e) => e.reason === 'VmFailed' && e.vm === 'web')?.message ?? '', /killed or crashed/);
  w.ac.abort();
  await w.ctl.done;
});

test('a VM that dies right after a pass, before its exit is watched, is restarted at once (not at the next resync)', async () => {
  const ev = collector();
  let killed = false;
  const ref: { w?: ReturnType<typeof setup> } = {};
  // the moment the pass reports Reconciled, the guest dies without an exit event reaching watch
  // (libvirt: `virsh destroy` in the window between the pass and the arming of its event stream)
  const onEvent = (e: Parameters<typeof ev.onEvent>[0]): void => {
    ev.onEvent(e);
    if (e.reason !== 'Reconciled' || killed) return;
    killed = true;
    const s = ref.w!.mb.vms.get('web')!;
    s.power = 'stopped';
    s.pid = null;
  };
  const w = (ref.w = setup(project([spec('web')]), { onEvent }));
  const starts = (): number => w.mb.calls((r) => r.method === 'start').length;
  await until(() => killed, 'the first pass');
  await until(() => starts() === 2 && w.mb.inFlight === 0, 'restart without a resync (resyncMs 0)');
  assert.ok(ev.reasons('web').includes('VmExited'));
  assert.doesNotMatch(ev.events.find((e) => e.reason === 'VmExited')!.message, /pid 0/);
  w.ac.abort();
  await w.ctl.done;
});
