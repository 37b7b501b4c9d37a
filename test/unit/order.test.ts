import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findCycles, reversed, runInOrder, withDependencies, type OrderItem, type RunOutcome } from '../../controllers/order.js';

const item = (name: string, dependsOn: string[] = [], gated = true): OrderItem => ({ name, dependsOn, gated });

/** A run whose completion the test controls. */
function controlled() {
  const started: string[] = [];
  const finish = new Map<string, (o: RunOutcome) => void>();
  const run = (name: string) =>
    new Promise<RunOutcome>((resolve) => {
      started.push(name);
      finish.set(name, resolve);
    });
  const tick = async () => {
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  };
  return {
    started,
    run,
    tick,
    done: (n: string, usable = true, summary = usable ? 'is ready' : 'failed: boom') => finish.get(n)!({ usable, summary }),
  };
}

test('independent items start together; a dependent starts only after its dependency is usable', async () => {
  const c = controlled();
  const all = runInOrder([item('web', ['db']), item('db'), item('cache')], c.run);
  await c.tick();
  assert.deepEqual(c.started.sort(), ['cache', 'db']);
  c.done('db');
  await c.tick();
  assert.ok(c.started.includes('web'));
  c.done('web');
  c.done('cache');
  const res = await all;
  assert.equal(
    [...res.values()].every((r) => r.ran),
    true,
  );
});

test('a failed dependency blocks dependents (transitively) with the reason', async () => {
  const res = await runInOrder([item('web', ['api']), item('api', ['db']), item('db'), item('cache')], async (n) =>
    n === 'db' ? { usable: false, summary: 'failed: disk full' } : { usable: true, summary: 'is ready' },
  );
  assert.deepEqual(res.get('api'), { name: 'api', ran: false, blockedBy: 'db', message: 'waiting on db, which failed: disk full' });
  const web = res.get('web');
  assert.ok(web && !web.ran);
  assert.equal(web.message, 'waiting on api, which is blocked (waiting on db, which failed: disk full)');
  assert.equal(res.get('cache')?.ran, true);
});

test('items that start nothing (not gated) do not wait for their dependencies', async () => {
  const c = controlled();
  const all = runInOrder([item('web', ['db'], false), item('db')], c.run);
  await c.tick();
  assert.deepEqual(c.started.sort(), ['db', 'web']);
  c.done('db', false);
  c.done('web');
  assert.equal((await all).get('web')?.ran, true);
});

test('a cycle that slipped past loading blocks the VMs on it instead of hanging', async () => {
  const items = [item('a', ['b']), item('b', ['a']), item('c', ['a']), item('d')];
  assert.deepEqual([...findCycles(items).keys()].sort(), ['a', 'b']);
  const res = await runInOrder(items, async () => ({ usable: true, summary: 'is ready' }));
  const a = res.get('a');
  assert.ok(a && !a.ran && /dependency cycle: a → b → a/.test(a.message));
  const c = res.get('c');
  assert.ok(c && !c.ran && /waiting on a, which is blocked \(dependency cycle/.test(c.message));
  assert.equal(res.get('d')?.ran, true);
  assert.equal(findCycles([item('x', ['x'])]).has('x'), true);
});

test('a rejected run rejects the whole order only after every other run settled', async () => {
  const c = controlled();
  let otherSettled = false;
  const all = runInOrder([item('a'), item('b'), item('c', ['a'])], (n) => {
    if (n === 'a') return Promise.reject(new Error('aborted'));
    return c.run(n).finally(() => (otherSettled = true));
  });
  let rejected = false;
  void all.catch(() => (rejected = true));
  await c.tick();
  assert.equal(rejected, false, 'still waiting for b');
  c.done('b');
  await assert.rejects(all, /aborted/);
  assert.equal(otherSettled, true);
  assert.equal(c.started.includes('c'), false);
});

test('reversed() and withDependencies()', () => {
  const items = [item('web', ['db']), item('db')];
  assert.deepEqual(reversed(items), [item('web', []), item('db', ['web'])]);
  const deps: Record<string, string[]> = { web: ['api'], api: ['db', 'cache'], db: [], cache: [] };
  assert.deepEqual(
    withDependencies(['web'], (n) => deps[n] ?? []),
    ['db', 'cache', 'api', 'web'],
  );
});

test('onWait says which unsettled dependency a gated item waits for, once per dependency, not for a settled one', async () => {
  const c = controlled();
  const waits: string[] = [];
  const all = runInOrder([item('web', ['db', 'cache']), item('db'), item('cache')], c.run, undefined, (n, d) => waits.push(`${n}<-${d}`));
  await c.tick();
  assert.deepEqual(waits, ['web<-db']);
  c.done('cache');
  await c.tick();
  c.done('db');
  await c.tick();
  assert.deepEqual(waits, ['web<-db'], 'cache had settled when web came to it');
  c.done('web');
  await all;
});
