/**
 * Readiness is reported only as observed (issue 13, items 1 and 13), through the built CLI with
 * the fake qemu-system-x86_64 first on PATH: the fake has no sshd, so the guest's SSH never
 * answers. A failed or killed readiness wait is never followed by a "Ready" without a new check,
 * and a QEMU that dies while tend waits for its guest fails the wait at once (`tend up`) or is
 * restarted at once (`tend watch`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { CLI, ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };
const leftover = new Set<number>();

before(() => ensureBuilt());
after(() => {
  for (const pid of leftover) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

function demo(): { cwd: string; stateDir: string; pidfile: string } {
  const p = project({
    'tend.yaml':
      'name: demo\nservices:\n  web:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n',
  });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  return { ...p, pidfile: vmFile(projectDir(p.stateDir, 'demo', p.cwd), 'web', 'pid') };
}

function qemuPid(pidfile: string): number | null {
  if (!existsSync(pidfile)) return null;
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return null;
  leftover.add(pid);
  return pid;
}

interface Ps {
  vms: { name: string; state: string; ready: boolean; conditions: string[] }[];
}
const ps = (p: { cwd: string; stateDir: string }): Ps['vms'][number] => (JSON.parse(tend(['ps', '--json'], p, env).stdout) as Ps).vms[0]!;

/** The built CLI as a child process (for commands killed or ended mid-way). */
function child(
  p: { cwd: string; stateDir: string },
  args: string[],
): { proc: ChildProcess; out: string[]; exited: Promise<number | null> } {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env, TEND_STATE_DIR: p.stateDir };
  delete e.NODE_OPTIONS;
  const proc = spawn(process.execPath, [CLI, ...args], { cwd: p.cwd, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => out.push(d));
  return { proc, out, exited: new Promise((resolve) => proc.on('exit', (code) => resolve(code))) };
}

async function until<T>(f: () => T | null | undefined | false, what: string, ms = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('False Ready: after a failed SSH wait, and after a `tend up` killed during it, up and ps do not say Ready', async () => {
  const p = demo();
  const first = tend(['up', '--ssh-timeout', '2s'], p, env);
  assert.equal(first.code, 1, first.stdout + first.stderr);
  assert.match(first.stdout + first.stderr, /web: Failed/);
  assert.ok(qemuPid(p.pidfile), 'QEMU runs; only the guest does not answer');
  assert.equal(ps(p).ready, false);

  // the second up checks again (and fails again), it does not say Ready in 0 s
  const t0 = Date.now();
  const second = tend(['up', '--ssh-timeout', '2s'], p, env);
  assert.equal(second.code, 1, second.stdout + second.stderr);
  assert.doesNotMatch(second.stdout, /web: Ready/);
  assert.ok(Date.now() - t0 >= 2000, 'the guest was waited for again');
  const row = ps(p);
  assert.equal(row.ready, false);
  assert.equal(row.conditions.includes('Ready'), false);

  // a `tend up` SIGKILLed during the SSH wait leaves nothing that says Ready either
  const killed = child(p, ['up', '--ssh-timeout', '60s']);
  await until(() => killed.out.join('').length > 0 || null, 'up to start', 10_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1500)); // well inside the SSH wait
  killed.proc.kill('SIGKILL');
  await killed.exited;
  assert.equal(ps(p).ready, false);
  const third = tend(['up', '--ssh-timeout', '1s'], p, env);
  assert.equal(third.code, 1, third.stdout + third.stderr);
  assert.doesNotMatch(third.stdout, /web: Ready/);
  assert.equal(tend(['down'], p, env).code, 0);
});

test('`tend up`: a QEMU killed during the SSH wait fails the wait at once with the exit, not after the time limit', async () => {
  const p = demo();
  const up = child(p, ['up', '--ssh-timeout', '60s']);
  const pid = await until(() => qemuPid(p.pidfile), 'QEMU to start');
  await new Promise((r) => setTimeout(r, 500)); // in the SSH wait
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  const code = await up.exited;
  const took = Date.now() - t0;
  const out = up.out.join('');
  assert.equal(code, 1, out);
  assert.match(out, new RegExp(`web: its process was killed or crashed \\(pid ${pid}\\) while tend waited for the guest`));
  assert.ok(took < 5000, `up ended ${took} ms after the kill (its SSH limit was 60 s)`);
});

test('`tend watch`: a QEMU killed while watch waits for its guest is restarted at once', async () => {
  const p = demo();
  const w = child(p, ['--json', 'watch']);
  try {
    const first = await until(() => qemuPid(p.pidfile), 'QEMU to start');
    await new Promise((r) => setTimeout(r, 500)); // in the SSH wait (it never answers)
    const t0 = Date.now();
    process.kill(first, 'SIGKILL');
    const second = await until(
      () => {
        const pid = qemuPid(p.pidfile);
        return pid !== null && pid !== first ? pid : null;
      },
      `a restart (watch output: ${w.out.join('')})`,
    );
    const took = Date.now() - t0;
    assert.ok(second !== first);
    assert.ok(took < 3000, `restarted ${took} ms after the kill`);
    assert.match(w.out.join(''), /its process was killed or crashed/);
  } finally {
    w.proc.kill('SIGTERM');
    await w.exited;
    tend(['down'], p, env);
  }
});
