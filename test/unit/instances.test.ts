/**
 * Named instances (ov's `-i NAME`, src/load/instances.ts): a recorded instance is one more VM
 * `<vm>-<instance>` in the loaded project, with tend-allocated host ports (the declared VM's fixed
 * ones would collide), and `plan` creates it while leaving the declared VM alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { addInstance, expandInstances, instanceTargets, removeInstances } from '../../src/load/instances.js';
import { withInstances } from '../../src/cli/context.js';
import { forgetInstances, readInstances, writeInstances } from '../../src/state/instances.js';
import { plan } from '../../controllers/plan.js';
import { UsageError } from '../../schemas/errors.js';
import type { Project } from '../../schemas/model.js';
import type { ObservedVm } from '../../schemas/ports.js';

const fixture = resolve(import.meta.dirname, '../fixtures/good/vms/issue-10/vms.yml');
const env = { HOME: mkdtempSync(join(tmpdir(), 'tend-inst-home-')) };

async function issue10(): Promise<{ project: Project; origins: Awaited<ReturnType<typeof loadProject>>['origins'] }> {
  const r = await loadProject([fixture], { env, cwd: resolve(fixture, '..') });
  assert.ok(r.project, JSON.stringify(r.diagnostics));
  return { project: r.project, origins: r.origins };
}

test('an instance is <vm>-<instance>: same desired state, its own name, every host port left to tend', async () => {
  const { project, origins } = await issue10();
  const arch = project.vms.find((v) => v.name === 'arch')!;
  assert.ok(
    arch.ports.some((p) => p.hostPort === 2224),
    'the fixture pins ssh.port 2224',
  );
  const x = expandInstances(project, origins, { arch: ['prod', 'dev'] });
  assert.deepEqual(
    x.project.vms.map((v) => v.name),
    ['arch', 'arch-dev', 'arch-prod', 'desktop'],
  );
  const prod = x.project.vms.find((v) => v.name === 'arch-prod')!;
  assert.deepEqual(
    prod.ports.map((p) => p.hostPort),
    arch.ports.map(() => null),
    'host ports are allocated per instance',
  );
  assert.deepEqual(
    prod.ports.map((p) => p.guestPort),
    arch.ports.map((p) => p.guestPort),
  );
  assert.equal(prod.memory, arch.memory);
  assert.deepEqual(prod.image, arch.image);
  assert.deepEqual(prod.cloudInit?.packages, arch.cloudInit?.packages);
  // the declared VM is untouched
  assert.ok(x.project.vms.find((v) => v.name === 'arch')!.ports.some((p) => p.hostPort === 2224));
  assert.deepEqual(x.instances['arch-prod'], { vm: 'arch', instance: 'prod' });
  assert.deepEqual(x.origins['arch-prod'], origins.arch, 'errors about an instance point at its VM in the file');
});

test('a hostname the file sets gets the instance appended; none stays none (the VM name)', async () => {
  const { project, origins } = await issue10();
  const p: Project = structuredClone(project);
  const arch = p.vms.find((v) => v.name === 'arch')!;
  arch.cloudInit!.hostname = 'archbox';
  const x = expandInstances(p, origins, { arch: ['prod'], desktop: ['a'] });
  assert.equal(x.project.vms.find((v) => v.name === 'arch-prod')!.cloudInit!.hostname, 'archbox-prod');
  const d = x.project.vms.find((v) => v.name === 'desktop-a')!;
  assert.equal(d.cloudInit?.hostname ?? null, null);
});

test('plan: a new instance is created; the declared VM, converged, plans nothing', async () => {
  const { project, origins } = await issue10();
  const x = expandInstances(project, origins, { arch: ['prod'] });
  const arch = project.vms.find((v) => v.name === 'arch')!;
  const running: ObservedVm = {
    name: 'arch',
    exists: true,
    power: 'running',
    pid: 1,
    applied: arch,
    diskImage: 'x',
    accel: 'tcg',
    ports: {},
    sshPort: 2224,
    intent: null,
    provisioned: [],
    startedAt: 0,
    corrupt: [],
  };
  const entries = plan(x.project, { vms: { arch: running } }, { recreate: false, prune: false, names: ['arch-prod', 'arch'] });
  const byVm = Object.fromEntries(entries.map((e) => [e.vm, e.action]));
  assert.equal(byVm['arch-prod'], 'create');
  assert.equal(byVm.arch, 'none');
});

test('bad instance names and clashes are usage errors, before anything is created', async () => {
  const { project, origins } = await issue10();
  for (const bad of ['Prod', 'a_b', '', '-x', 'x'.repeat(70)])
    assert.throws(
      () => expandInstances(project, origins, { arch: [bad] }),
      (e: unknown) => e instanceof UsageError && e.reason === 'BadInstance',
      bad,
    );
  const clash: Project = structuredClone(project);
  clash.vms.push({ ...structuredClone(clash.vms[0]), name: 'arch-prod' });
  assert.throws(
    () => expandInstances(clash, origins, { arch: ['prod'] }),
    (e: unknown) => e instanceof UsageError && /declares a VM of that name/.test(e.message),
  );
  assert.throws(() => addInstance(project, {}, 'Bad'), UsageError);
});

test('an instance of a VM no longer declared is left out (its folder is an orphan)', async () => {
  const { project, origins } = await issue10();
  const x = expandInstances(project, origins, { gone: ['prod'] });
  assert.deepEqual(
    x.project.vms.map((v) => v.name),
    ['arch', 'desktop'],
  );
});

test('add, targets, remove: `up -i prod` names every declared VM; other verbs name the existing ones', async () => {
  const { project, origins } = await issue10();
  const all = addInstance(project, { arch: ['dev'] }, 'prod');
  assert.deepEqual(all, { arch: ['dev', 'prod'], desktop: ['prod'] });
  assert.deepEqual(addInstance(project, {}, 'prod', ['arch']), { arch: ['prod'] });
  const x = expandInstances(project, origins, { arch: ['dev', 'prod'] });
  assert.deepEqual(instanceTargets(x.project, x.instances, 'prod'), ['arch-prod']);
  assert.deepEqual(instanceTargets(x.project, x.instances, 'prod', ['desktop']), ['desktop-prod']);
  assert.deepEqual(removeInstances({ arch: ['dev', 'prod'], desktop: ['prod'] }, ['arch-prod', 'desktop-prod', 'web']), { arch: ['dev'] });
});

test('the record in the state folder is what every load expands; destroy forgets it; a corrupt one reads as none', async () => {
  const { project, origins } = await issue10();
  const dir = mkdtempSync(join(tmpdir(), 'tend-inst-state-'));
  assert.deepEqual(withInstances(project, origins, dir).project.vms.length, 2);
  const created = withInstances(project, origins, dir, { name: 'prod', vms: ['arch'] });
  assert.deepEqual(Object.keys(created.instances), ['arch-prod']);
  assert.deepEqual(readInstances(dir), {}, 'loading never writes: the command records it');
  await writeInstances(dir, created.instanceMap);
  assert.deepEqual(
    withInstances(project, origins, dir).project.vms.map((v) => v.name),
    ['arch', 'arch-prod', 'desktop'],
  );
  await forgetInstances(dir, ['arch-prod']);
  assert.deepEqual(readInstances(dir), {});
  writeFileSync(join(dir, 'instances.json'), '{"arch": "prod"');
  let corrupt = 0;
  assert.deepEqual(
    readInstances(dir, () => corrupt++),
    {},
  );
  assert.equal(corrupt, 1);
});
