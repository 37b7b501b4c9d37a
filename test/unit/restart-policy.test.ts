import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, decideRestart, FRESH, RestartBook, type BackoffOptions } from '../../controllers/restart-policy.js';

const o: BackoffOptions = { baseMs: 1000, factor: 2, maxMs: 8000, healthyMs: 60_000 };

test('the first exit restarts at once, later ones in a row wait longer, capped', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, o)),
    [0, 1000, 2000, 4000, 8000, 8000, 8000],
  );
});

test('a crash loop grows the delay per failure and a healthy period resets it', () => {
  const book = new RestartBook(o);
  let t = 0;
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const d = book.decide('web', 'always', 'failure', t);
    assert.equal(d.restart, true);
    if (d.restart) {
      delays.push(d.delayMs);
      t += d.delayMs + 500; // crashes again half a second after each restart
    }
  }
  assert.deepEqual(delays, [0, 1000, 2000, 4000, 8000]);
  // runs for longer than the healthy period, then crashes: back to an immediate restart
  t += 61_000;
  const d = book.decide('web', 'always', 'failure', t);
  assert.deepEqual(d, { restart: true, delayMs: 0, attempt: 1 });
});

test('restart policies: always restarts a clean exit, on-failure only failures, no never', () => {
  assert.equal(decideRestart('always', 'clean', FRESH, 0, o).decision.restart, true);
  assert.equal(decideRestart('on-failure', 'failure', FRESH, 0, o).decision.restart, true);
  const clean = decideRestart('on-failure', 'clean', FRESH, 0, o).decision;
  assert.equal(clean.restart, false);
  if (!clean.restart) assert.match(clean.why, /on-failure/);
  const no = decideRestart('no', 'failure', FRESH, 0, o).decision;
  assert.equal(no.restart, false);
  if (!no.restart) assert.match(no.why, /"no"/);
});

test('VMs have separate crash counts', () => {
  const book = new RestartBook(o);
  book.decide('web', 'always', 'failure', 0);
  const second = book.decide('web', 'always', 'failure', 100);
  const other = book.decide('db', 'always', 'failure', 100);
  assert.equal(second.restart && second.delayMs, 1000);
  assert.equal(other.restart && other.delayMs, 0);
  book.forget('web');
  assert.equal(book.get('web').failures, 0);
});
