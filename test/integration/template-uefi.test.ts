/**
 * UEFI warm templates (issue 15 §2), through the real QEMU backend against the fake
 * qemu-system-x86_64 (which saves a small state over `migrate exec:`): the first Ready of a warm
 * UEFI VM keeps a template with its variable store (NVRAM) as it was at the capture, read-only;
 * a clone of it gets its own writable copy next to its disk, so no two clones (nor the template)
 * share that file. A UEFI template without its variable store is not cloned from: that VM boots
 * a plain disk. What a restored UEFI guest does is a real guest's matter (test/e2e/warm.test.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, TEMPLATE_FILES, templateDir, vmFile } from '../../src/state/paths.js';
import { hostAlias, writePin } from '../../src/ssh/known-hosts.js';
import { readInstanceId } from '../../src/state/instance-id.js';
import { listTemplates } from '../../src/qemu/templates.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tend-uefi-template-'));
const started: number[] = [];
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

test('a UEFI template keeps the variable store; each clone gets its own copy', { timeout: 60_000 }, async () => {
  const base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  const stateRoot = join(root, 'state');
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_LOG: join(root, 'fake.log') };
  const backend = createQemuBackend({ stateRoot, env });
  const vmNamed = (name: string) =>
    applyDefaults({ name, image: { kind: 'path', ref: base }, accel: 'tcg', warm: true, firmware: 'uefi' } as VmDraft);
  // one VM per project (two user-network VMs would share a project network, where clones are not made)
  const projectOf = (vm: ReturnType<typeof vmNamed>): Project => ({
    name: vm.name,
    dir: join(root, vm.name),
    files: [],
    vms: [vm],
    volumes: {},
  });
  const pdOf = (p: Project) => projectDir(stateRoot, p.name, p.dir);

  // the source: booted, its guest wrote to its NVRAM, observed Ready (its host key pinned)
  const src = vmNamed('src');
  const srcP = projectOf(src);
  await backend.prepare(srcP, src, { recreateDisk: false });
  started.push((await backend.start(srcP, src)).pid);
  const srcVars = vmFile(pdOf(srcP), 'src', 'efiVars');
  const nvram = readFileSync(srcVars);
  nvram.write('Boot0001 debian written by the guest', 0x100);
  writeFileSync(srcVars, nvram);
  await writePin(vmFile(pdOf(srcP), 'src', 'knownHosts'), {
    instanceId: await readInstanceId(pdOf(srcP), 'src'),
    alias: hostAlias(srcP.name, 'src'),
    keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTheTest'],
  });
  await backend.markReady!(srcP, 'src', true);

  const [tpl] = await listTemplates(stateRoot);
  assert.ok(tpl, 'the first Ready of a warm UEFI VM kept a template');
  const tplVars = join(templateDir(stateRoot, tpl.key), TEMPLATE_FILES.efiVars);
  assert.ok(readFileSync(tplVars).equals(nvram), "the template holds the source's variables as they were at the capture");
  assert.equal(statSync(tplVars).mode & 0o777, 0o400, 'read-only');

  // two clones: each its own writable copy, equal to the template's
  const inodes = new Set<number>([statSync(tplVars).ino, statSync(srcVars).ino]);
  for (const name of ['c1', 'c2']) {
    const vm = vmNamed(name);
    const p = projectOf(vm);
    await backend.prepare(p, vm, { recreateDisk: false });
    assert.ok(existsSync(vmFile(pdOf(p), name, 'clone')), `${name} is a clone`);
    const vars = vmFile(pdOf(p), name, 'efiVars');
    assert.ok(readFileSync(vars).equals(nvram), `${name}'s variables are the template's`);
    assert.equal(statSync(vars).mode & 0o777, 0o600, `${name}'s copy is its own to write`);
    inodes.add(statSync(vars).ino);
  }
  assert.equal(inodes.size, 4, 'four files: the source, the template, two clones');
  assert.equal(statSync(tplVars).mode & 0o777, 0o400, "the template's copy stays read-only");

  // a UEFI template that lost its variable store is not cloned from: a plain disk over the base
  rmSync(tplVars, { force: true });
  const c3 = vmNamed('c3');
  const p3 = projectOf(c3);
  await backend.prepare(p3, c3, { recreateDisk: false });
  assert.equal(existsSync(vmFile(pdOf(p3), 'c3', 'clone')), false, 'no clone');
  const info = JSON.parse(
    execFileSync('qemu-img', ['info', '-U', '--output=json', vmFile(pdOf(p3), 'c3', 'disk')], { encoding: 'utf8' }),
  ) as {
    'backing-filename'?: string;
  };
  assert.equal(info['backing-filename'], base);
});
