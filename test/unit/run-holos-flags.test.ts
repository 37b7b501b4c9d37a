/** `tend run` takes holos run's flags (issue 11 §2) and the VM means what holos would make of them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunArgs } from '../../src/cli/commands/run.js';
import { runProjectYaml } from '../../src/cli/run-folder.js';
import { loadProject } from '../../src/load/project.js';

test('holos flags: --vcpu, --memory, --port, --device, --image-os, --user, --uefi, --runcmd (first boot), -- CMD (over SSH)', async () => {
  const args = parseRunArgs([
    '--vcpu',
    '4',
    '--memory',
    '4G',
    '--port',
    '8080:80',
    '--device',
    '0000:01:00.0',
    '--image-os',
    'openrc',
    '--user',
    'ops',
    '--uefi',
    '--runcmd',
    'rc-service nginx start',
    '--name',
    'box',
    './custom.qcow2',
    '--',
    'uname',
    '-a',
  ]);
  assert.deepEqual(args.command, ['uname', '-a']);
  const cwd = mkdtempSync(join(tmpdir(), 'tend-run-holos-'));
  writeFileSync(join(cwd, 'custom.qcow2'), '');
  const file = join(cwd, 'tend.yaml');
  writeFileSync(file, runProjectYaml(args, 'box', cwd));
  const r = await loadProject([file], { cwd, env: { HOME: cwd } });
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  const vm = r.project?.vms[0];
  assert.equal(vm?.cpus, 4);
  assert.equal(vm?.memory, 4096);
  assert.equal(vm?.firmware, 'uefi');
  assert.deepEqual(vm?.devices, [{ pci: '0000:01:00.0', romFile: null }]);
  assert.equal(vm?.image.os, 'openrc');
  assert.equal(vm?.image.ref, join(cwd, 'custom.qcow2'));
  assert.equal(vm?.cloudInit?.user, 'ops');
  assert.deepEqual(vm?.cloudInit?.runcmd, ['rc-service nginx start']);
  assert.deepEqual(
    vm?.ports.map((p) => [p.hostPort, p.guestPort]),
    [[8080, 80]],
  );
});

test('--dockerfile: the image comes from FROM when none is given', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-run-df-'));
  writeFileSync(join(cwd, 'Dockerfile'), 'FROM debian:12\nRUN echo hi\n');
  const args = parseRunArgs(['--dockerfile', 'Dockerfile']);
  assert.equal(args.image, '');
  const file = join(cwd, 'tend.yaml');
  writeFileSync(file, runProjectYaml(args, 'df', cwd));
  const r = await loadProject([file], { cwd, env: { HOME: cwd } });
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  assert.equal(r.project?.vms[0].image.ref, 'debian:12');
  assert.equal(r.project?.vms[0].provision.length, 1);
  assert.throws(() => parseRunArgs(['--uefi']), /needs an image/);
});

test('a $ in run flags reaches the VM as typed: the run tend.yaml escapes it for compose interpolation', async () => {
  const args = parseRunArgs(['--runcmd', 'echo $HOME ${X:-y} $$', '--name', 'dollar', 'debian:12']);
  const cwd = mkdtempSync(join(tmpdir(), 'tend-run-dollar-'));
  const file = join(cwd, 'tend.yaml');
  writeFileSync(file, runProjectYaml(args, 'dollar', cwd));
  const r = await loadProject([file], { cwd, env: { HOME: '/elsewhere', X: 'x' } });
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.project?.vms[0].cloudInit?.runcmd, ['echo $HOME ${X:-y} $$']);
});
