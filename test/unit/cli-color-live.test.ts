/** Colour decisions (NO_COLOR, FORCE_COLOR, TTY, TERM=dumb) and the live display's pure pieces. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colorEnabled, colors } from '../../src/cli/color.js';
import { bar, elapsed } from '../../src/cli/live.js';
import { progressIntervalMs } from '../../src/cli/progress-interval.js';
import { waitMessage } from '../../src/state/lock.js';

test('colour: FORCE_COLOR wins, then NO_COLOR, then a terminal that is not TERM=dumb', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  assert.equal(colorEnabled(tty, {}), true);
  assert.equal(colorEnabled(pipe, {}), false);
  assert.equal(colorEnabled(tty, { NO_COLOR: '1' }), false);
  assert.equal(colorEnabled(tty, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
  assert.equal(colorEnabled(tty, { TERM: 'dumb' }), false);
  assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1' }), true);
  assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' }), true);
  assert.equal(colorEnabled(tty, { FORCE_COLOR: '0' }), false);
  assert.equal(colors(false).red('x'), 'x');
  assert.equal(colors(true).red('x'), '\x1b[31mx\x1b[39m');
});

test('live pieces: elapsed clock, download bar, the progress interval, the lock wait line', () => {
  assert.equal(elapsed(7_400), '7s');
  assert.equal(elapsed(65_000), '1m05s');
  assert.equal(elapsed(3_725_000), '1h02m');
  assert.equal(bar({ received: 150 * 1048576, total: 300 * 1048576 }, 10), '[#####.....]  50% 150.0/300.0 MiB');
  assert.equal(bar({ received: 1048576, total: null }), '1.0 MiB');
  assert.equal(progressIntervalMs({}), 10_000);
  assert.equal(progressIntervalMs({ TEND_PROGRESS_INTERVAL: '30s' }), 30_000);
  assert.equal(progressIntervalMs({ TEND_PROGRESS_INTERVAL: 'soon' }), 10_000);
  const h = { pid: 42, command: 'tend watch', since: new Date(2026, 0, 2, 19, 42, 3).toISOString() };
  assert.equal(
    waitMessage(h, 0, 300_000),
    'waiting for the project lock: held by pid 42 (tend watch) since 19:42:03; waiting up to 5m more (--lock-timeout; --no-wait fails at once)',
  );
  assert.match(waitMessage(undefined, 20_000, 300_000), /held by another tend process; waited 20s, waiting up to 4m40s more/);
});
