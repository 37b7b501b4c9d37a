import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../controllers/workqueue.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { until } from '../helpers/controller-fixtures.js';

function setup(debounceMs = 50, maxDebounceMs = 1000) {
  const clock = new ManualClock();
  const ac = new AbortController();
  const q = new WorkQueue<string>(clock, ac.signal, { debounceMs, maxDebounceMs });
  const taken: Set<string>[] = [];
  let ended = false;
  const pump = (async () => {
    for (let b = await q.take(); b; b = await q.take()) taken.push(b);
    ended = true;
  })();
  const turns = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  };
  return { clock, ac, q, taken, turns, pump, ended: () => ended };
}

test('keys added before a take are handed over once, together', async () => {
  const w = setup();
  w.q.add('web');
  w.q.add('db');
  w.q.add('web');
  await until(() => w.taken.length === 1, 'a batch');
  assert.deepEqual([...w.taken[0]].sort(), ['db', 'web']);
  await w.turns();
  assert.equal(w.taken.length, 1, 'nothing else is ready');
  w.ac.abort();
  await w.pump;
  assert.equal(w.ended(), true);
});

test('addAfter: ready when its timer fires; the earlier of two timers wins; add makes it ready now', async () => {
  const w = setup();
  w.q.addAfter('web', 1000);
  w.q.addAfter('web', 5000);
  assert.equal(w.q.dueAt('web'), w.clock.now() + 1000);
  w.clock.advance(999);
  await w.turns();
  assert.equal(w.taken.length, 0);
  w.clock.advance(1);
  await until(() => w.taken.length === 1, 'due');
  assert.deepEqual([...w.taken[0]], ['web']);
  w.q.addAfter('db', 1000);
  w.q.add('db');
  await until(() => w.taken.length === 2, 'added now');
  assert.equal(w.q.has('db'), false, 'the timer was cancelled');
  assert.equal(w.clock.pendingSleeps, 0);
  w.ac.abort();
  await w.pump;
});

test('addDebounced waits for quiet, but a stream of calls is capped at maxDebounceMs', async () => {
  const w = setup(50, 300);
  w.q.addDebounced(':files');
  w.clock.advance(40);
  w.q.addDebounced(':files'); // restarts the quiet period
  w.clock.advance(40);
  await w.turns();
  assert.equal(w.taken.length, 0, '80 ms in, but only 40 ms quiet');
  w.clock.advance(10);
  await until(() => w.taken.length === 1, 'quiet for 50 ms');
  // a call every 40 ms forever: still handed over 300 ms after the first
  const start = w.clock.now();
  while (w.taken.length < 2) {
    w.q.addDebounced(':files');
    w.clock.advance(40);
    await w.turns();
    assert.ok(w.clock.now() - start <= 320, 'never later than the cap');
  }
  w.ac.abort();
  await w.pump;
});

test('forget drops a ready key and its timer; aborting ends take() and every timer', async () => {
  const w = setup();
  w.q.addAfter('web', 1000);
  w.q.forget('web');
  assert.equal(w.q.has('web'), false);
  w.clock.advance(1000);
  await w.turns();
  assert.equal(w.taken.length, 0);
  w.q.addAfter('db', 1000);
  w.ac.abort();
  await w.pump;
  assert.equal(w.clock.pendingSleeps, 0, 'no timer left behind');
});
