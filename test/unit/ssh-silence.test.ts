import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { applyDefaults } from '../../schemas/defaults.js';
import { consoleHintAfterMs, silenceHint, watchConsoleSilence } from '../../src/ssh/silence.js';
import { ManualClock } from '../helpers/manual-clock.js';

const dir = mkdtempSync(join(tmpdir(), 'tend-silence-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Advance the clock by `ms`, in steps of `step`, letting the watcher's stat() calls run between. */
async function pass(clock: ManualClock, ms: number, step = 5000): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    for (let i = 0; i < 1000 && clock.pendingSleeps === 0; i++) await tick();
    clock.advance(step);
    for (let i = 0; i < 20; i++) await tick();
  }
}

test('a console log that stays empty earns one hint after the silence threshold, not before', async () => {
  const log = join(dir, 'silent.log');
  writeFileSync(log, '');
  const clock = new ManualClock();
  const calls: number[] = [];
  const w = watchConsoleSilence({ consoleLog: log, afterMs: 60_000, pollMs: 5000, clock, onSilent: (s) => calls.push(s) });
  await pass(clock, 55_000);
  assert.equal(calls.length, 0, 'nothing before 60 s');
  await pass(clock, 5000);
  await w.done;
  assert.deepEqual(calls, [60]);
  await pass(clock, 60_000).catch(() => undefined);
  assert.deepEqual(calls, [60], 'once');
});

test('the first byte of console output ends the watch; so does stop(); a missing log is never called silent', async () => {
  const log = join(dir, 'talks.log');
  writeFileSync(log, 'old boot\n'); // output of an earlier boot does not count
  const clock = new ManualClock();
  const calls: number[] = [];
  const w = watchConsoleSilence({ consoleLog: log, afterMs: 60_000, pollMs: 5000, clock, onSilent: (s) => calls.push(s) });
  await pass(clock, 10_000);
  appendFileSync(log, 'SeaBIOS\n');
  await pass(clock, 5000);
  await w.done;
  await pass(clock, 60_000).catch(() => undefined);
  assert.equal(calls.length, 0);

  const stopped = watchConsoleSilence({ consoleLog: log, afterMs: 10_000, pollMs: 1000, clock, onSilent: (s) => calls.push(s) });
  await pass(clock, 3000, 1000);
  stopped.stop();
  await stopped.done;
  await pass(clock, 20_000, 1000).catch(() => undefined);
  assert.equal(calls.length, 0);

  const missing = watchConsoleSilence({ consoleLog: join(dir, 'nope.log'), afterMs: 1000, clock, onSilent: (s) => calls.push(s) });
  await missing.done;
  assert.equal(calls.length, 0);
});

test('the threshold: 60 s by default, $TEND_CONSOLE_HINT_AFTER as a duration, 0 turns the hint off', () => {
  assert.equal(consoleHintAfterMs({}), 60_000);
  assert.equal(consoleHintAfterMs({ TEND_CONSOLE_HINT_AFTER: '5s' }), 5000);
  assert.equal(consoleHintAfterMs({ TEND_CONSOLE_HINT_AFTER: '2m' }), 120_000);
  assert.equal(consoleHintAfterMs({ TEND_CONSOLE_HINT_AFTER: '0' }), null);
  assert.equal(consoleHintAfterMs({ TEND_CONSOLE_HINT_AFTER: 'soon' }), 60_000);
});

test('the hint names the likely causes for this VM and where to look', () => {
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: '/i.qcow2' }, video: 'none' });
  const h = silenceHint(vm, 60, null);
  assert.match(h, /^no console output and no SSH banner for 60 s/);
  assert.match(h, /\(1\) no video device \(video is "none"\)/);
  assert.match(h, /\(2\) firmware: an image made for UEFI only/);
  assert.match(h, /\(3\) the image: is it a bootable disk image/);
  assert.match(h, /Look: tend logs web --console; to see its screen, set graphics vnc/);
  const vnc = silenceHint(
    applyDefaults({ name: 'db', image: { kind: 'path', ref: '/i.raw', format: 'raw' }, firmware: 'uefi', graphics: 'vnc' }),
    75,
    'vnc 127.0.0.1:5901',
  );
  // with the default vga device, the advice is not "try vga" but where the kernel writes
  assert.match(vnc, /\(1\) the screen: GRUB and the kernel may draw only on the vga screen/);
  assert.doesNotMatch(vnc, /try video "vga"/);
  const qxl = silenceHint(applyDefaults({ name: 'q', image: { kind: 'path', ref: '/i.qcow2' }, video: 'qxl' }), 60, null);
  assert.match(qxl, /\(1\) the video device \(video "qxl"\).*try video "vga"/);
  assert.match(vnc, /\(2\) firmware: uefi/);
  assert.match(vnc, /declared raw/);
  assert.match(vnc, /tend logs db --console; its screen: vnc 127\.0\.0\.1:5901/);
});
