import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isQemuFor, liveQemu } from '../../src/qemu/liveness.js';

test('a live pid whose cmdline is not our QEMU does not count (pid reuse)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tend-live-'));
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(async () => {
    sleeper.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const pidfile = join(dir, 'qemu.pid');
  await writeFile(pidfile, `${sleeper.pid}\n`);
  assert.equal(await liveQemu(pidfile), null);
});

test("a live QEMU naming this pidfile counts; one naming another VM's pidfile does not", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tend-live-'));
  const pidfile = join(dir, 'qemu.pid');
  const fake = fileURLToPath(new URL('../fake-qemu/qemu-system-x86_64', import.meta.url));
  const p = spawn(fake, ['-pidfile', pidfile], { stdio: 'ignore' });
  const other = join(dir, 'other.pid');
  t.after(async () => {
    p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && !(await readFile(pidfile, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 50));
  await writeFile(other, `${p.pid}\n`);
  const live = await liveQemu(pidfile);
  assert.equal(live?.pid, p.pid);
  assert.equal(await liveQemu(other), null);
});

test('missing, garbage or dead pids are not alive', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tend-live-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(await liveQemu(join(dir, 'none.pid')), null);
  await writeFile(join(dir, 'bad.pid'), 'not a pid');
  assert.equal(await liveQemu(join(dir, 'bad.pid')), null);
  await writeFile(join(dir, 'dead.pid'), '4194303\n');
  assert.equal(await liveQemu(join(dir, 'dead.pid')), null);
});

test('isQemuFor: the program (or a script run by an interpreter) must be qemu-system-*', () => {
  assert.ok(isQemuFor(['/usr/bin/qemu-system-x86_64', '-pidfile', '/a/qemu.pid'], '/a/qemu.pid'));
  assert.ok(isQemuFor(['node', '/t/fake-qemu/qemu-system-x86_64', '-pidfile', '/a/qemu.pid'], '/a/qemu.pid'));
  assert.ok(!isQemuFor(['/usr/bin/vim', '-pidfile', '/a/qemu.pid'], '/a/qemu.pid'));
  assert.ok(!isQemuFor(['/usr/bin/qemu-system-x86_64', '-pidfile', '/b/qemu.pid'], '/a/qemu.pid'));
});
