/**
 * Faults of a converge, with the real QEMU backend and the fake qemu-system on PATH:
 *  - a converge SIGKILLed at any point is finished by the next one: no orphan QEMU, no duplicate VM;
 *  - QEMU failing to start is reported with QEMU's own stderr, leaving no process and no lock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const child = fileURLToPath(new URL('../helpers/converge-child.ts', import.meta.url));
const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };

/** Live (non-zombie) fake QEMU processes whose command line mentions `needle`. */
function qemus(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (/qemu-system/.test(cmd) && cmd.includes(needle) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${e}/stat`, 'utf8')))
        out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

const all: string[] = [];
before(() => ensureBuilt());
after(() => {
  for (const dir of all) for (const pid of qemus(dir)) process.kill(pid, 'SIGKILL');
});

function runChild(
  cwd: string,
  stateDir: string,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, cwd, stateDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// accel: tcg skips the KVM probe, so a whole converge takes ~0.9 s here (~0.5 s of it tsx start-up).
const TWO =
  'name: faults\nservices:\n  a:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { memory_mb: 128 }\n  b:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { memory_mb: 128 }\n';

// Kill points spread over start-up, loading, preparing (qemu-img, seed, keys), starting QEMU and after.
for (const killAfter of [350, 450, 550, 650, 750, 900, 1200]) {
  test(`a converge SIGKILLed after ${killAfter} ms is finished by the next one`, { timeout: 120_000 }, async () => {
    const p = project({ 'tend.yaml': TWO });
    all.push(p.stateDir);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
    const killed = await runChild(p.cwd, p.stateDir, killAfter);
    assert.ok(killed.signal === 'SIGKILL' || killed.code === 0, `first run: ${killed.code} ${killed.signal} ${killed.stderr}`);

    const again = await runChild(p.cwd, p.stateDir);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout.trim().split('\n').pop() ?? '{}'), { ok: true });

    // Exactly one QEMU per VM, and both observed running by the CLI.
    const procs = qemus(p.stateDir);
    assert.equal(procs.length, 2, `QEMU processes for this project: ${procs.join(', ')}`);
    const ps = JSON.parse(tend(['ps', '--json'], p, env).stdout) as { vms: { name: string; state: string; pid: number }[] };
    assert.deepEqual(ps.vms.map((v) => `${v.name}:${v.state}`).sort(), ['a:running', 'b:running']);
    assert.deepEqual(ps.vms.map((v) => v.pid).sort(), [...procs].sort());

    // A third converge changes nothing.
    const third = await runChild(p.cwd, p.stateDir);
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(qemus(p.stateDir).sort(), [...procs].sort());
  });
}

test('QEMU failing to start: its stderr is reported, no process and no lock are left', { timeout: 60_000 }, () => {
  const p = project({ 'tend.yaml': TWO });
  all.push(p.stateDir);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const r = tend(['up', '--no-wait'], p, { ...env, FAKE_QEMU_MODE: 'fail-start' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Could not open disk: fake failure requested/);
  assert.deepEqual(qemus(p.stateDir), []);
  // The lock was released: the next command is not told the project is locked.
  const again = tend(['up', '--no-wait'], p, { ...env, FAKE_QEMU_MODE: 'fail-start' });
  assert.doesNotMatch(again.stderr, /locked/);
  const projects = join(p.stateDir, 'projects');
  for (const d of existsSync(projects) ? readdirSync(projects) : []) {
    assert.ok(!existsSync(join(projects, d, 'project.lock')), 'no lock directory left');
  }
});
