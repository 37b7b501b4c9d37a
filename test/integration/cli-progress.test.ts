/**
 * Progress, never silence (issue 14 §1), as a user sees it: the built CLI under a pseudo-terminal
 * (util-linux `script`) and piped, the real QEMU backend under the fake qemu-system-x86_64, and
 * an image downloaded from a local HTTP server that sends it slowly. The guest never answers SSH
 * (the fake QEMU has no guest), so each VM waits for its banner, gets the console-silence hint
 * and fails at the SSH stage's limit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, ensureBuilt, project } from './cli-harness.js';
import { acquireProjectLock } from '../../src/state/lock.js';
import { projectDir } from '../../src/state/paths.js';

/* eslint-disable no-control-regex -- the test looks for terminal escape codes */
const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const ESC = '\x1b';
const SGR = /\x1b\[[0-9;]*m/;
const strip = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

let server: http.Server;
let url = '';
let image: Buffer;
const pids: number[] = [];

before(async () => {
  ensureBuilt();
  const p = project({});
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  image = readFileSync(join(p.cwd, 'base.qcow2'));
  // 20 pieces, 150 ms apart: a 3 s download; no checksum sidecars (404)
  server = http.createServer((req, res) => {
    if (req.url !== '/base.qcow2') {
      res.statusCode = 404;
      return res.end();
    }
    res.setHeader('content-length', image.length);
    const step = Math.ceil(image.length / 20);
    let at = 0;
    const next = (): void => {
      if (at >= image.length) return void res.end();
      res.write(image.subarray(at, at + step));
      at += step;
      setTimeout(next, 150);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/base.qcow2`;
});

after(() => {
  server.close();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

interface Out {
  code: number | null;
  out: string;
}

/** Run the built CLI (asynchronously: this process serves the image), piped or under a pty. */
function run(args: string[], p: { cwd: string; stateDir: string }, extra: NodeJS.ProcessEnv, tty: boolean): Promise<Out> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    FAKE_QEMU_MODE: '',
    TEND_STATE_DIR: p.stateDir,
    TEND_CONSOLE_HINT_AFTER: '1s',
    TERM: 'xterm',
    ...extra,
  };
  delete env.NODE_OPTIONS;
  if (extra.NO_COLOR === undefined) delete env.NO_COLOR;
  if (extra.FORCE_COLOR === undefined) delete env.FORCE_COLOR;
  const argv = [process.execPath, CLI, ...args];
  const child = tty
    ? spawn('script', ['-qfec', argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null'], { cwd: p.cwd, env })
    : spawn(argv[0], argv.slice(1), { cwd: p.cwd, env });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
}

function twoVms(): { cwd: string; stateDir: string } {
  const vm = `    image: ${url}\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n`;
  return project({ 'tend.yaml': `name: demo\nservices:\n  web:\n${vm}  db:\n${vm}` });
}

/** Remember the VMs' QEMU pids so they are killed at the end. */
function reap(out: string): void {
  for (const m of out.matchAll(/started \(pid (\d+)/g)) pids.push(Number(m[1]));
}

test('piped: a line per change, periodic "still ..." lines (not a line per tick), the silence hint, no escape codes', async () => {
  const p = twoVms();
  const t0 = Date.now();
  const r = await run(['up', '--ssh-timeout', '4s'], p, { TEND_PROGRESS_INTERVAL: '1s' }, false);
  const seconds = (Date.now() - t0) / 1000;
  reap(r.out);
  assert.equal(r.code, 1, r.out);
  assert.ok(!r.out.includes(ESC), `no escape codes when piped:\n${JSON.stringify(r.out)}`);
  assert.match(r.out, new RegExp(`(web|db): downloading ${url.replace(/[.?]/g, '\\$&')}`));
  // the download is seen while it runs, as a percentage in a periodic line
  assert.match(r.out, /(web|db): still preparing after \d+s: .*\d+% of 0\.\d MiB/);
  // the readiness stage: what it waits for, and for how long
  assert.match(r.out, /web: waiting for SSH on 127\.0\.0\.1:\d+/);
  assert.match(r.out, /web: still running after \d+s: waiting for SSH on 127\.0\.0\.1:\d+ \(\d+s\)/);
  // a guest that says nothing: likely causes and where to look
  assert.match(r.out, /WARN {2}web: no console output and no SSH banner for \d+ s: .*Likely causes: .*tend logs web --console/);
  // periodic, not per tick: at most one "still" line per VM per interval (20 download ticks made none of their own)
  for (const vm of ['web', 'db']) {
    const still = r.out.split('\n').filter((l) => l.includes(`${vm}: still `)).length;
    assert.ok(still >= 2 && still <= Math.ceil(seconds) + 1, `${vm}: ${still} "still" lines in ${seconds} s:\n${r.out}`);
  }
  assert.ok(r.out.split('\n').filter((l) => /% of /.test(l)).length <= Math.ceil(seconds) * 2, r.out);
  assert.match(r.out, /^web: Failed — no SSH server answered/m);
});

test('on a terminal: one live line per VM redrawn in place, with state, elapsed time and what it waits for', async () => {
  const p = twoVms();
  const r = await run(['up', '--ssh-timeout', '4s'], p, {}, true);
  reap(r.out);
  assert.equal(r.code, 1, r.out);
  const plain = strip(r.out);
  assert.ok(r.out.includes(`${ESC}[1A`) && r.out.includes(`${ESC}[2K`), 'lines are redrawn in place');
  // a download bar on the VM's line while it downloads
  assert.match(plain, /… (web|db) +Preparing +\d+s +\[#*\.*\] +\d+% 0\.\d\/0\.\d MiB +(downloading|waiting for the download|no checksum)/);
  // the readiness stage with the time in the state and in the step
  assert.match(plain, /… web +Running +\d+s +waiting for SSH on 127\.0\.0\.1:\d+/);
  assert.match(plain, /… db +Running +\d+s +waiting for SSH on 127\.0\.0\.1:\d+/);
  // the silence hint is written in full above the lines, and the VM's line points at it
  assert.match(plain, /web: no console output and no SSH banner for \d+ s: .*tend logs web --console/);
  assert.match(plain, /web +Running +\d+s +stuck\? see above; tend logs web --console/);
  // no periodic plain lines and no log lines of events on a terminal: the live lines say it
  assert.ok(!plain.includes('still running after'), plain);
  assert.ok(!/INFO {2}web: starting QEMU/.test(plain), plain);
  // the last frame stays, then the result; colour on the state (a terminal, no NO_COLOR)
  assert.match(plain, /✘ web +Failed +\d+s +Running failed: no SSH server answered/);
  assert.match(plain, /^web: Failed — no SSH server answered/m);
  assert.match(r.out, /\x1b\[31m✘/);
});

/** web depends on db (which declares a healthcheck); both from a local image (no download). */
function dependent(): { cwd: string; stateDir: string } {
  const vm = `    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n`;
  const p = project({
    'tend.yaml': `name: deps\nservices:\n  web:\n${vm}    depends_on: [db]\n  db:\n${vm}    healthcheck: { test: ["CMD", "true"] }\n`,
  });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  return p;
}

test('a VM that waits for its depends_on dependency says so, with elapsed time: piped and on a terminal', async () => {
  const piped = await run(['up', '--ssh-timeout', '4s'], dependent(), { TEND_PROGRESS_INTERVAL: '1s' }, false);
  reap(piped.out);
  assert.equal(piped.code, 1, piped.out);
  assert.match(piped.out, /web: waiting for db \(healthy\)\n/);
  assert.match(piped.out, /web: still pending after [1-9]\d*s: waiting for db \(healthy\) \([1-9]\d*s\)/);
  assert.match(piped.out, /web: not started: waiting on db, which failed/);
  // the wait ended before web did anything
  assert.ok(!/web: (starting|creating)/.test(piped.out), piped.out);

  const tty = await run(['up', '--ssh-timeout', '4s'], dependent(), {}, true);
  reap(tty.out);
  assert.equal(tty.code, 1, tty.out);
  const plain = strip(tty.out);
  assert.match(plain, /… web +Pending +[1-9]\d*s +waiting for db \(healthy\)/);
  assert.match(plain, /… db +Running +\d+s +waiting for SSH/);
  assert.match(plain, /• web +Blocked +\d+s +not started: waiting on db, which failed/);
});

test('down, stop and restart show the same progress as up: live lines on a terminal, periodic lines piped', async () => {
  // guests that take 2.5 s to act on ACPI powerdown (grace period 5 s): each stop is seen while it runs
  const slow = { FAKE_QEMU_POWERDOWN_MS: '2500', TEND_PROGRESS_INTERVAL: '1s' };
  const vm = `    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 5s\n`;
  const p = project({ 'tend.yaml': `name: halt\nservices:\n  web:\n${vm}  db:\n${vm}` });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const up = await run(['up', '--ssh-timeout', '1s'], p, slow, false);
  reap(up.out);
  assert.match(up.out, /web: started/);
  assert.match(up.out, /db: started/);
  // now web uses db: down stops web first while db waits its turn
  writeFileSync(join(p.cwd, 'tend.yaml'), `name: halt\nservices:\n  web:\n${vm}    depends_on: [db]\n  db:\n${vm}`);

  const down = await run(['down'], p, slow, true);
  assert.equal(down.code, 0, down.out);
  let plain = strip(down.out);
  assert.ok(down.out.includes(`${ESC}[1A`) && down.out.includes(`${ESC}[2K`), 'down redraws its lines in place');
  assert.match(plain, /… web +Stopping +[1-9]\d*s +stopping \(grace period 5 s\)/);
  assert.match(plain, /… db +Pending +[1-9]\d*s +waiting for web \(stopped\), which uses it/);
  assert.match(plain, /… db +Stopping +\d+s +stopping \(grace period 5 s\)/);
  assert.match(plain, /• db +Stopped +\d+s +stopped/);
  assert.ok(!/INFO {2}web: stopping/.test(plain), 'on a terminal the live lines say it, not log lines');

  const start = await run(['start', 'db', '--ssh-timeout', '1s'], p, slow, false);
  reap(start.out);
  assert.match(start.out, /db: started/);
  const restart = await run(['restart', 'db', '--ssh-timeout', '1s'], p, slow, true);
  reap(restart.out);
  plain = strip(restart.out);
  assert.ok(restart.out.includes(`${ESC}[1A`), 'restart redraws its line in place');
  assert.match(plain, /… db +Stopping +[1-9]\d*s +stopping \(grace period 5 s\)/);
  assert.match(plain, /… db +Running +\d+s +waiting for SSH/);

  const stop = await run(['stop', 'db'], p, slow, false);
  assert.equal(stop.code, 0, stop.out);
  assert.ok(!stop.out.includes(ESC), stop.out);
  assert.match(stop.out, /db: stopping \(grace period 5 s\)/);
  assert.match(stop.out, /db: still stopping after [1-9]\d*s: stopping \(grace period 5 s\) \([1-9]\d*s\)/);
  assert.match(stop.out, /db: stopped/);
});

test('NO_COLOR on a terminal: live lines without colour; FORCE_COLOR piped: colour without live lines', async () => {
  const p = twoVms();
  const r = await run(['up', '--ssh-timeout', '2s'], p, { NO_COLOR: '1' }, true);
  reap(r.out);
  assert.equal(r.code, 1, r.out);
  assert.ok(!SGR.test(r.out), `no colour codes with NO_COLOR:\n${JSON.stringify(r.out.slice(0, 2000))}`);
  assert.match(strip(r.out), /web +Running +\d+s +waiting for SSH/);

  const f = await run(['up', '--ssh-timeout', '2s'], p, { FORCE_COLOR: '1', TEND_PROGRESS_INTERVAL: '1s' }, false);
  reap(f.out);
  assert.match(f.out, /\x1b\[33mWARN/, 'FORCE_COLOR colours warnings when piped');
  assert.ok(!f.out.includes(`${ESC}[1A`), 'piped output is never redrawn');
});

test('`tend image pull` on a terminal draws one bar (no 10 % lines); piped it prints the 10 % lines', async () => {
  const tty = await run(['image', 'pull', url], project({}), {}, true);
  assert.equal(tty.code, 0, tty.out);
  assert.ok(!/% of /.test(tty.out), tty.out);
  assert.match(tty.out, /\x1b\[1A\x1b\[2K\x1b\[G\[#+\.*\] +\d+%/, 'the bar is redrawn in place');
  assert.match(strip(tty.out), /\[#{30}\] 100% 0\.\d\/0\.\d MiB/);
  assert.equal(strip(tty.out).match(/downloading /g)?.length, 1);

  const piped = await run(['image', 'pull', url], project({}), {}, false);
  assert.equal(piped.code, 0, piped.out);
  assert.ok(!piped.out.includes(ESC));
  assert.match(piped.out, /: 50% of 0\.\d MiB/);
});

test('waiting for the project lock says who holds it and how long it waits, at once and then periodically', async () => {
  const p = project({ 'tend.yaml': `name: locked\nservices:\n  web:\n    image: ${url}\n` });
  const release = await acquireProjectLock(projectDir(p.stateDir, 'locked', p.cwd), {
    command: 'tend test-holder',
    timeoutMs: 1000,
    wait: false,
  });
  try {
    const t0 = Date.now();
    const r = await run(['up', '--lock-timeout', '3s'], p, { TEND_PROGRESS_INTERVAL: '1s' }, false);
    assert.equal(r.code, 4, r.out);
    assert.ok(Date.now() - t0 >= 2900);
    const notes = r.out.split('\n').filter((l) => l.includes('waiting for the project lock'));
    assert.match(
      notes[0] ?? '',
      new RegExp(`held by pid ${process.pid} \\(tend test-holder\\) since \\d\\d:\\d\\d:\\d\\d; waiting up to 3s more`),
    );
    assert.ok(notes.length >= 2 && notes.length <= 5, notes.join('\n'));
    assert.match(notes.at(-1) ?? '', /waited [12]s, waiting up to [12]s more/);
    assert.match(r.out, /gave up after waiting 3s/);
  } finally {
    await release();
  }
});
