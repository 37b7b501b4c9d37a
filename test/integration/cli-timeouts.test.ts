/**
 * Readiness stage limits from the command line and from the file, through the built CLI and
 * the real QEMU backend under the fake qemu-system-x86_64 in its "hang" mode (a QEMU that
 * never answers QMP): the start stage fails after the limit the user gave, and says so.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: 'hang' };

before(() => ensureBuilt());

function hangingProject(extra = ''): { cwd: string; stateDir: string } {
  const p = project({
    'tend.yaml': `name: demo\nservices:\n  web:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n${extra}`,
  });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  return p;
}

test('`up --start-timeout 1s` fails the start stage after 1 s and names it', () => {
  const p = hangingProject();
  const r = tend(['up', '--start-timeout', '1s'], p, env);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /QEMU did not answer on its QMP socket within 1 s/);
});

test("the file's `timeouts: { start }` applies when no flag is given", () => {
  const p = hangingProject('    timeouts: { start: 1500ms }\n');
  const r = tend(['up'], p, env);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /within 1\.5 s/);
});

test('a stage flag that is not a duration is a usage error, and no VM is touched', () => {
  const p = hangingProject();
  const r = tend(['up', '--ssh-timeout', 'soon'], p, env);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /--ssh-timeout "soon" is not a duration/);
  assert.match(tend(['ps'], p, env).stdout, /web\s+not-created/);
  const zero = tend(['up', '--start-timeout', '0'], p, env);
  assert.equal(zero.code, 2, zero.stdout + zero.stderr);
  assert.match(zero.stderr, /--start-timeout must be more than 0s/);
});

test('the commands that wait for readiness list the stage flags', () => {
  const p = hangingProject();
  for (const cmd of ['up', 'watch', 'start', 'restart', 'provision', 'exec']) {
    const help = tend(['help', cmd], p, env).stdout;
    for (const flag of ['--start-timeout', '--ssh-timeout', '--login-timeout', '--cloud-init-timeout'])
      assert.ok(help.includes(flag), `${cmd} --help lists ${flag}`);
  }
});
