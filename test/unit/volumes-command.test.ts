/**
 * `tend volume ls | inspect | rm` against the real QEMU backend's state folder (no QEMU is
 * started: a VM "exists" when its disk file does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderVolume, volumeCommand } from '../../src/cli/commands/volume.js';
import { loadContext, type GlobalOptions } from '../../src/cli/context.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { vmFile, volumePath, volumesDir } from '../../src/state/paths.js';
import { NotFoundError, TendError } from '../../schemas/errors.js';

const YAML = `name: vols
services:
  db:
    image: debian:12
    volumes: ["pgdata:/var/lib/postgresql", "shared:/shared:ro"]
  web:
    image: debian:12
    volumes: ["shared:/srv"]
volumes:
  pgdata: { size: 2 }
  shared: {}
`;

async function setup(): Promise<GlobalOptions & { projDir: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-vol-'));
  writeFileSync(join(cwd, 'tend.yaml'), YAML);
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-vol-state-'));
  const g: GlobalOptions = { cwd, stateDir, wait: false, backend: createQemuBackend({ stateRoot: stateDir }) };
  return { ...g, projDir: (await loadContext(g)).projDir };
}

function createVolume(projDir: string, name: string, size = '1G'): void {
  mkdirSync(volumesDir(projDir), { recursive: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', volumePath(projDir, name), size]);
}

function createVm(projDir: string, name: string): void {
  mkdirSync(join(projDir, 'vms', name), { recursive: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', vmFile(projDir, name, 'disk'), '1G']);
}

test('volume ls lists declared, created and left-over volumes with who mounts them', async () => {
  const g = await setup();
  createVolume(g.projDir, 'pgdata', '2G');
  createVolume(g.projDir, 'old');
  const r = await volumeCommand({ ...g, verb: 'ls' });
  assert.equal(r.verb, 'ls');
  if (r.verb !== 'ls') return;
  assert.deepEqual(
    r.volumes.map((v) => v.name),
    ['old', 'pgdata', 'shared'],
  );
  const pg = r.volumes.find((v) => v.name === 'pgdata');
  assert.equal(pg?.created, true);
  assert.equal(pg?.virtualSize, 2 * 1024 ** 3);
  assert.deepEqual(pg?.mounts, [{ vm: 'db', target: '/var/lib/postgresql', readOnly: false }]);
  assert.equal(r.volumes.find((v) => v.name === 'shared')?.created, false);
  assert.equal(r.volumes.find((v) => v.name === 'old')?.declared, false);
  const text = renderVolume(r);
  assert.match(text, /^NAME\s+SIZE\s+USED\s+MOUNTED BY\s+STATE$/m);
  assert.match(text, /^pgdata\s+2G\s+\S+\s+db:\/var\/lib\/postgresql\s+created$/m);
  assert.match(text, /^shared\s+.*db:\/shared:ro, web:\/srv\s+not created yet$/m);
  assert.match(text, /^old\s+.*created \(no longer declared\)$/m);
});

test('volume inspect shows one volume; an unknown name suggests the close one', async () => {
  const g = await setup();
  createVolume(g.projDir, 'pgdata', '2G');
  const r = await volumeCommand({ ...g, verb: 'inspect', names: ['pgdata'] });
  assert.match(renderVolume(r), /path:\s+\S+pgdata\.qcow2$/m);
  await assert.rejects(volumeCommand({ ...g, verb: 'inspect', names: ['pgdat'] }), (e: unknown) => {
    assert.ok(e instanceof NotFoundError);
    assert.match(e.message, /did you mean "pgdata"/);
    return true;
  });
});

test('volume rm refuses while a VM that mounts it exists, and deletes it once the VM is gone', async () => {
  const g = await setup();
  createVolume(g.projDir, 'shared');
  createVm(g.projDir, 'web');
  await assert.rejects(volumeCommand({ ...g, verb: 'rm', names: ['shared'] }), (e: unknown) => {
    assert.ok(e instanceof TendError);
    assert.equal(e.reason, 'VolumeInUse');
    assert.match(e.message, /used by web/);
    return true;
  });
  assert.ok(existsSync(volumePath(g.projDir, 'shared')), 'the refused rm deleted nothing');
  rmSync(join(g.projDir, 'vms', 'web'), { recursive: true });
  const r = await volumeCommand({ ...g, verb: 'rm', names: ['shared'] });
  assert.deepEqual(r.verb === 'rm' && r.removed, ['shared']);
  assert.equal(existsSync(volumePath(g.projDir, 'shared')), false);
});
