/**
 * The built `tend watch` as a user runs it: a child process with the fake QEMU first on PATH and
 * the real SSH guest (the fake has no sshd, so readiness is still in flight when SIGTERM comes).
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { CLI, ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const leftover = new Set<number>();

before(() => ensureBuilt());
after(() => {
  for (const pid of leftover) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

interface Watch {
  child: ChildProcess;
  lines: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

function watch(p: { cwd: string; stateDir: string }, args: string[] = []): Watch {
  const env: NodeJS.ProcessEnv = { ...process.env, TEND_STATE_DIR: p.stateDir, PATH: `${fakeDir}:${process.env.PATH ?? ''}` };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [CLI, 'watch', ...args], { cwd: p.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, stderr, exited };
}

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('tend watch: JSON events when not a terminal, one watch per project, SIGTERM ends it at once leaving VMs running', async () => {
  const p = project({ 'tend.yaml': '' });
  const base = join(p.cwd, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
  execFileSync(
    'sh',
    [
      '-c',
      `cat > tend.yaml <<'Y'
name: demo
services:
  web:
    image: ./base.qcow2
    accel: tcg
    vm: { vcpu: 1, memory_mb: 256 }
    provision: [{ shell: "echo hi" }]
Y`,
    ],
    { cwd: p.cwd },
  );
  const w = watch(p);
  const reasons = (): string[] =>
    w.lines.flatMap((l) => {
      try {
        return [(JSON.parse(l) as { reason: string }).reason];
      } catch {
        return [];
      }
    });
  try {
    await until(() => reasons().includes('VmStarted'), `VmStarted (stdout: ${w.lines.join('\n')} stderr: ${w.stderr.join('')})`);
    const projDir = projectDir(p.stateDir, 'demo', p.cwd);
    const pid = Number(readFileSync(vmFile(projDir, 'web', 'pid'), 'utf8').trim());
    leftover.add(pid);

    const second = tend(['watch'], p);
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, new RegExp(`already watched by pid ${w.child.pid} \\(tend watch\\)`));

    // the guest's readiness (SSH) is still in flight: SIGTERM must end watch within 2 s
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    const code = await w.exited;
    const took = Date.now() - t0;
    assert.equal(code, 0, w.stderr.join(''));
    assert.ok(took < 2000, `watch took ${took} ms to end`);
    assert.ok(pidAlive(pid), 'the VM is left running');
    assert.deepEqual(
      readdirSync(projDir).filter((f) => /lock|\.tmp/.test(f)),
      [],
      'no lock or temp file left',
    );
    assert.ok(reasons().includes('WatchStopped'));
  } finally {
    if (w.child.exitCode === null) w.child.kill('SIGKILL');
  }
});
