/**
 * The built CLI's one-VM commands against a VM the real QEMU backend started under the fake
 * qemu-system-x86_64 (test/fake-qemu, speaks QMP): ps, status, suspend/resume, stop (with its
 * intent showing in ps and plan), destroy. No guest, no SSH: these commands need none.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { loadProject } from '../../src/load/project.js';
import { projectDir, vmDir } from '../../src/state/paths.js';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const started: number[] = [];

before(() => ensureBuilt());
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

/** The process exited (it is this test's child, so it may linger as a zombie until reaped). */
function goneOrZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

interface Ps {
  vms: { name: string; state: string; accel: string | null; ssh: string | null; pid: number | null; conditions: string[] }[];
}

test('ps, status, suspend/resume, stop and destroy act on a running VM', async () => {
  const p = project({
    'tend.yaml':
      'name: demo\nservices:\n  web:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n',
  });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };
  const loaded = await loadProject([join(p.cwd, 'tend.yaml')], { cwd: p.cwd });
  assert.ok(loaded.project, JSON.stringify(loaded.diagnostics));
  const backend = createQemuBackend({ stateRoot: p.stateDir, env: { ...process.env, ...env } });
  const vm = loaded.project.vms[0];
  await backend.prepare(loaded.project, vm, { recreateDisk: false });
  const { pid } = await backend.start(loaded.project, vm);
  started.push(pid);

  const ps = JSON.parse(tend(['ps', '--json'], p, env).stdout) as Ps;
  assert.equal(ps.vms.length, 1);
  assert.equal(ps.vms[0].state, 'running');
  assert.equal(ps.vms[0].accel, 'tcg');
  assert.equal(ps.vms[0].pid, pid);
  assert.match(ps.vms[0].ssh ?? '', /^127\.0\.0\.1:\d+$/);
  const table = tend(['ps'], p, env);
  assert.match(
    table.stdout,
    /^NAME\s+STATE\s+READY\s+ACCEL\s+CPUS\s+MEMORY\s+PORTS\s+SSH\s+AGE\s+CONDITIONS\s+HOST\nweb\s+running\s+no\s+tcg\s+1\s+256MiB\s+-\s+127\.0\.0\.1:\d+\s+\d+s\s/,
  );

  const status = tend(['status', 'web'], p, env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`PID:\\s+${pid}`));
  assert.match(status.stdout, /qmp:\s+\/\S+/);

  assert.equal(tend(['suspend', 'web'], p, env).code, 0);
  assert.equal((JSON.parse(tend(['ps', '--json'], p, env).stdout) as Ps).vms[0].state, 'paused');
  assert.equal(tend(['resume', 'web'], p, env).code, 0);
  assert.equal((JSON.parse(tend(['ps', '--json'], p, env).stdout) as Ps).vms[0].state, 'running');

  const stop = tend(['stop', 'web', '--timeout', '1'], p, env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /^web: Stopped/);
  assert.ok(goneOrZombie(pid), 'the QEMU process is gone');
  const after = JSON.parse(tend(['ps', '--json'], p, env).stdout) as Ps;
  assert.equal(after.vms[0].state, 'stopped');
  assert.ok(after.vms[0].conditions.includes('StopIntent'));
  assert.match(tend(['plan'], p, env).stdout, /web\s+none\s+.*tend stop/);

  const destroy = tend(['destroy', 'web'], p, env);
  assert.equal(destroy.code, 0, destroy.stderr);
  assert.equal(existsSync(vmDir(projectDir(p.stateDir, 'demo', p.cwd), 'web')), false, 'the VM folder is deleted');
  assert.match(tend(['plan'], p, env).stdout, /web\s+create/);
});
