/**
 * The guest's SSH host key tend makes with a fresh disk (src/ssh/host-key.ts), through the QEMU
 * backend's real prepare (qemu-img, no guest): cloud-init gets it in the seed (`ssh_keys`), it
 * lasts as long as the disk, and a disk made before tend made host keys keeps its seed as it was.
 * The e2e suite (test/e2e/provision.test.ts) checks the booted guest serves exactly this key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { loadProject } from '../../src/load/project.js';
import { projectDir, vmDir } from '../../src/state/paths.js';
import { publicKeyOf } from '../../src/ssh/keys.js';
import { project } from './cli-harness.js';

interface UserData {
  ssh_keys?: { ed25519_private: string; ed25519_public?: string };
}

const userDataText = (seed: string): string => execFileSync('isoinfo', ['-J', '-x', '/user-data', '-i', seed], { encoding: 'utf8' });
const userData = (seed: string): UserData => parse(userDataText(seed)) as UserData;

test("a fresh disk gets its own host key in the seed, kept for the disk's life; an older disk keeps its seed", async () => {
  const p = project({
    'tend.yaml':
      'name: hk\nservices:\n  web:\n    image: ./base.qcow2\n    vm: { vcpu: 1, memory_mb: 256 }\n  raw:\n    image: ./base.qcow2\n    cloud_init: { user_data: ./ud.yaml }\n',
    'ud.yaml': '#cloud-config\nhostname: mine\n',
  });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const loaded = await loadProject([join(p.cwd, 'tend.yaml')], { cwd: p.cwd });
  assert.ok(loaded.project, JSON.stringify(loaded.diagnostics));
  const proj = loaded.project;
  const backend = createQemuBackend({ stateRoot: p.stateDir, env: process.env });
  const [web, raw] = ['web', 'raw'].map((n) => proj.vms.find((v) => v.name === n)!);
  const dir = vmDir(projectDir(p.stateDir, proj.name, proj.dir), 'web');
  const keyFile = join(dir, 'ssh_host_ed25519_key');
  const seed = join(dir, 'seed.iso');

  await backend.prepare(proj, web, { recreateDisk: false });
  const key = readFileSync(keyFile, 'utf8');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const ud = userData(seed);
  assert.equal(ud.ssh_keys?.ed25519_private, key);
  assert.match(publicKeyOf(key, 'x'), /^ssh-ed25519 AAAA/);
  // cloud-init derives the public half (a given one it would write 0600, unreadable to users)
  assert.deepEqual(Object.keys(ud.ssh_keys), ['ed25519_private']);

  // prepared again (every start does): the same key, the same seed bytes (a saved state stays valid)
  const bytes = readFileSync(seed);
  await backend.prepare(proj, web, { recreateDisk: false });
  assert.equal(readFileSync(keyFile, 'utf8'), key);
  assert.ok(readFileSync(seed).equals(bytes), 'seed unchanged');

  // a disk made by an earlier tend (no key file): its seed gets none, and none is made for it
  rmSync(keyFile);
  await backend.prepare(proj, web, { recreateDisk: false });
  assert.equal(userData(seed).ssh_keys, undefined);
  assert.throws(() => statSync(keyFile), /ENOENT/);

  // a new disk: a new key
  await backend.prepare(proj, web, { recreateDisk: true });
  const again = readFileSync(keyFile, 'utf8');
  assert.notEqual(again, key);
  assert.equal(userData(seed).ssh_keys?.ed25519_private, again);

  // a user-data file of the user's own: tend adds no key to it
  await backend.prepare(proj, raw, { recreateDisk: false });
  const rawDir = vmDir(projectDir(p.stateDir, proj.name, proj.dir), 'raw');
  assert.throws(() => statSync(join(rawDir, 'ssh_host_ed25519_key')), /ENOENT/);
  // (two VMs on user networking share the project network: the file is a MIME part next to tend's bootcmd)
  const parts = userDataText(join(rawDir, 'seed.iso'))
    .split(/^--==tend-user-data==/m)
    .slice(1, -1)
    .map((part) => Buffer.from(part.split('\n\n')[1] ?? '', 'base64').toString('utf8'));
  assert.equal(parts.length, 2);
  assert.match(parts[0], /hostname: mine/);
  for (const part of parts) assert.doesNotMatch(part, /ssh_keys|PRIVATE KEY/);
});
