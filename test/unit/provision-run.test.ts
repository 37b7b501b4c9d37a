/**
 * src/provision/run.ts without a guest: the host-side check and the layer cache's record. Step
 * identities hash every script and upload, so they are computed once per converge: the `pending`
 * check keeps them for the `run` of the same spec that follows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults } from '../../schemas/defaults.js';
import type { Project, ProvisionStep } from '../../schemas/model.js';
import { createProvisioner } from '../../src/provision/run.js';
import { stepHashes } from '../../src/provision/cache.js';
import { readRecord, recordPath } from '../../src/provision/record.js';
import { projectDir, vmDir } from '../../src/state/paths.js';

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'tend-prov-'));
  const project: Project = { name: 'p', dir: root, files: [], vms: [], volumes: {} };
  const vm = applyDefaults({
    name: 'web',
    image: { kind: 'catalog', ref: 'debian:12' },
    provision: [
      { kind: 'shell', inline: ['echo one'] },
      { kind: 'shell', inline: ['echo two'] },
    ],
  });
  const projDir = projectDir(root, project.name, project.dir);
  mkdirSync(vmDir(projDir, 'web'), { recursive: true });
  writeFileSync(join(vmDir(projDir, 'web'), 'instance-id'), 'iid-1\n');
  let calls = 0;
  let connects = 0;
  const p = createProvisioner({
    stateRoot: root,
    say: () => {},
    hashes: (steps: readonly ProvisionStep[]) => {
      calls++;
      return stepHashes(steps);
    },
    open: () => {
      connects++;
      return Promise.reject(new Error('no guest in this test'));
    },
  });
  return { root, project, vm, projDir, p, calls: () => calls, connects: () => connects };
}

test('provision: the step identities are computed once per converge (pending, then run)', async () => {
  const s = setup();
  assert.equal(await s.p.pending(s.project, s.vm), true);
  await assert.rejects(s.p.run(s.project, s.vm, { force: false }), /no guest/);
  assert.equal(s.calls(), 1);
  assert.equal(s.connects(), 1);
  // the next converge computes them again (a script may have changed meanwhile)
  await s.p.pending(s.project, s.vm);
  assert.equal(s.calls(), 2);
});

test('provision: everything recorded on this disk → nothing pending, no connection', async () => {
  const s = setup();
  const path = recordPath(s.projDir, 'web');
  writeFileSync(path, JSON.stringify({ instanceId: 'iid-1', steps: stepHashes(s.vm.provision) }));
  assert.equal(await s.p.pending(s.project, s.vm), false);
  await s.p.run(s.project, s.vm, { force: false });
  assert.equal(s.connects(), 0);
  // a record of another disk does not count
  writeFileSync(path, JSON.stringify({ instanceId: 'iid-0', steps: stepHashes(s.vm.provision) }));
  assert.equal(await s.p.pending(s.project, s.vm), true);
  await assert.rejects(s.p.run(s.project, s.vm, { force: false }), /no guest/);
  // before running, the record is reset to this disk with no step done
  assert.deepEqual(await readRecord(path), { instanceId: 'iid-1', steps: [] });
});
