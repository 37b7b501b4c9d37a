/** procfs sampling for `tend top`, against this very process (real /proc values). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpuPercent, parseStat, sampleProcess } from '../../src/host/procfs.js';
import { formatBytes, tapOf } from '../../src/cli/commands/top.js';

test('a real process: CPU time grows while it computes, RSS matches /proc/self/status', async () => {
  const a = await sampleProcess(process.pid);
  assert.ok(a);
  const t0 = Date.now();
  let x = 0;
  while (Date.now() - t0 < 400) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
  const b = await sampleProcess(process.pid);
  assert.ok(b);
  const pct = cpuPercent(a, b, Date.now() - t0);
  assert.ok(pct > 20 && pct < 400, `a busy loop uses CPU: ${pct}%`);
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  assert.ok(Math.abs(b.rssBytes / 1024 - rssKb) < 64 * 1024, `${b.rssBytes} bytes vs ${rssKb} kB`);
  assert.ok(b.threads >= 1);
  assert.equal(await sampleProcess(2 ** 22 + 12345), null, 'a process that does not exist');
});

test('stat fields are counted after the last ")" (a command name may hold spaces and parentheses)', () => {
  const rest = 'S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 2000 30';
  assert.deepEqual(parseStat(`4242 (qemu (x) y) ${rest}`), { utime: 250, stime: 50, threads: 7 });
  assert.equal(parseStat('garbage'), null);
});

test('TAP device from the QEMU argv; sizes with their unit', () => {
  assert.equal(tapOf(['qemu-system-x86_64', '-netdev', 'tap,id=net0,ifname=tend1a2b,script=no,downscript=no']), 'tend1a2b');
  assert.equal(tapOf(['qemu-system-x86_64', '-netdev', 'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22']), undefined);
  assert.equal(formatBytes(0), '0B');
  assert.equal(formatBytes(1536), '1.5KiB');
  assert.equal(formatBytes(812 * 1024 ** 2), '812MiB');
  assert.equal(formatBytes(null), '-');
});
