/**
 * Issue 11 §3: a project file that became invalid (a provisioning script deleted, a typo) is an
 * error for validate, plan and up, but ps, status, logs, stop, down and destroy still act on the
 * VMs tend knows from its state dir: stopping what runs never depends on the file being valid.
 * Real QEMU backend under the fake qemu-system-x86_64 (test/fake-qemu).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { loadProject } from '../../src/load/project.js';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const started: number[] = [];

before(() => ensureBuilt());
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

function goneOrZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

test('with a missing provision script or a broken file: validate/plan/up refuse, ps/status/logs/stop/down still work', async () => {
  const yaml =
    'name: demo\nservices:\n  web:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n    provision:\n      - script: ./setup.sh\n  db:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n';
  const p = project({ 'tend.yaml': yaml, 'setup.sh': 'echo hi\n' });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };
  const loaded = await loadProject([join(p.cwd, 'tend.yaml')], { cwd: p.cwd });
  assert.ok(loaded.project, JSON.stringify(loaded.diagnostics));
  const backend = createQemuBackend({ stateRoot: p.stateDir, env: { ...process.env, ...env } });
  const pids: Record<string, number> = {};
  for (const vm of loaded.project.vms) {
    await backend.prepare(loaded.project, vm, { recreateDisk: false });
    pids[vm.name] = (await backend.start(loaded.project, vm)).pid;
    started.push(pids[vm.name]);
  }

  rmSync(join(p.cwd, 'setup.sh'));
  for (const cmd of [['validate'], ['plan'], ['up']]) {
    const r = tend(cmd, p, env);
    assert.equal(r.code, 3, `${cmd[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /tend\.yaml:9:\d+: error: the provision script "\.\/setup\.sh" does not exist/);
  }
  const ps = tend(['ps', '--json'], p, env);
  assert.equal(ps.code, 0, ps.stderr);
  const rows = (JSON.parse(ps.stdout) as { vms: { name: string; state: string }[] }).vms;
  assert.deepEqual(rows.map((v) => `${v.name}:${v.state}`).sort(), ['db:running', 'web:running']);
  assert.equal(tend(['status', 'web'], p, env).code, 0);
  assert.equal(tend(['logs', 'web'], p, env).code, 0);
  const stop = tend(['stop', 'db', '--timeout', '1'], p, env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(goneOrZombie(pids.db), 'db stopped');

  // worse: the file no longer parses at all; down still stops what runs
  writeFileSync(join(p.cwd, 'tend.yaml'), 'name: demo\nservices:\n  web: [\n');
  const down = tend(['down'], p, env);
  assert.equal(down.code, 0, down.stdout + down.stderr);
  assert.match(down.stdout, /web: Stopped/);
  assert.match(
    down.stdout,
    /tend\.yaml:3:8: warning: this list opened with "\[" is never closed/,
    'down says why it worked from the state',
  );
  assert.ok(goneOrZombie(pids.web), 'web stopped');
});
