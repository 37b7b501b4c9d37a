/**
 * Warm templates and volumes (issue 15 §2), through the real QEMU backend against the fake
 * qemu-system-x86_64: a warm VM with a named volume or a host folder keeps no template (a
 * template's memory never knows a volume), one line saying why; a VM without them does, and a VM
 * with them is then prepared as its clone (the key leaves volumes out), its volume a file of its
 * own project that the template folder never holds. The hot-plug into a restored guest is a real
 * guest's matter (test/e2e/warm.test.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile, volumePath } from '../../src/state/paths.js';
import { hostAlias, writePin } from '../../src/ssh/known-hosts.js';
import { readInstanceId } from '../../src/state/instance-id.js';
import { listTemplates } from '../../src/qemu/templates.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tend-vol-template-'));
const started: number[] = [];
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

test('a VM with volumes keeps no template; one without does, and a VM with volumes is its clone', { timeout: 60_000 }, async () => {
  const base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  const share = join(root, 'share');
  mkdirSync(share);
  const stateRoot = join(root, 'state');
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l).msg as string) });
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, TEND_VIRTIOFSD: join(fakeDir, 'virtiofsd') };
  const backend = createQemuBackend({ stateRoot, env, log });
  const vmNamed = (name: string, volumes: VmSpec['volumes']) =>
    applyDefaults({ name, image: { kind: 'path', ref: base }, accel: 'tcg', warm: true, volumes } as VmDraft);
  const projectOf = (vm: VmSpec): Project => ({
    name: vm.name,
    dir: join(root, vm.name),
    files: [],
    vms: [vm],
    volumes: vm.volumes.some((m) => m.kind === 'named') ? { data: { size: 1 } } : {},
  });
  const pdOf = (p: Project) => projectDir(stateRoot, p.name, p.dir);
  const mounts: VmSpec['volumes'] = [
    { kind: 'named', name: 'data', target: '/data', readOnly: false },
    { kind: 'host', source: share, target: '/share', readOnly: false },
  ];
  /** boot, pin a host key (as readiness would), observe Ready: the first Ready may keep a template */
  async function firstReady(vm: VmSpec): Promise<Project> {
    const p = projectOf(vm);
    await backend.prepare(p, vm, { recreateDisk: false });
    started.push((await backend.start(p, vm)).pid);
    await writePin(vmFile(pdOf(p), vm.name, 'knownHosts'), {
      instanceId: await readInstanceId(pdOf(p), vm.name),
      alias: hostAlias(p.name, vm.name),
      keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTheTest'],
    });
    await backend.markReady!(p, vm.name, true);
    return p;
  }

  // first a warm VM with a volume and a host folder: no template, one line why
  await firstReady(vmNamed('v1', mounts));
  assert.deepEqual(await listTemplates(stateRoot), []);
  assert.ok(
    lines.some((l) => /no warm template kept: it has volumes or host folders, which a template never holds/.test(l)),
    lines.join('\n'),
  );

  // a VM without them keeps the template (same key: volumes are not part of it)
  await firstReady(vmNamed('plain', []));
  const [tpl] = await listTemplates(stateRoot);
  assert.ok(tpl, 'a warm VM without volumes kept a template');

  // the next VM with a volume and a folder is prepared as its clone; its volume is its own
  const v2 = vmNamed('v2', mounts);
  const p2 = projectOf(v2);
  await backend.prepare(p2, v2, { recreateDisk: false });
  assert.ok(existsSync(vmFile(pdOf(p2), 'v2', 'clone')), 'v2 is a clone of the template');
  assert.ok(existsSync(volumePath(pdOf(p2), 'data')), "v2's volume is in its own project");
  assert.deepEqual(
    readdirSync(tpl.path).filter((f) => f.includes('data') || f.includes('volume')),
    [],
    'the template folder holds no volume',
  );
});
