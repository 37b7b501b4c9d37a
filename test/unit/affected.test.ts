import { test } from 'node:test';
import assert from 'node:assert/strict';
import { affectedVms, dependentsOf, referencedPaths, watchedPaths } from '../../controllers/affected.js';
import { project, spec } from '../helpers/controller-fixtures.js';

test('only the VM whose spec changed is affected', () => {
  const before = project([spec('web'), spec('db')]);
  const after = project([spec('web', { memory: 2048 }), spec('db')]);
  assert.deepEqual(affectedVms(before, after, ['/p/tend.yaml']), { vms: ['web'], removed: [] });
});

test('an unchanged project with a changed referenced script affects the VM that runs it', () => {
  const web = spec('web', { provision: [{ kind: 'shell', script: '/p/setup.sh' }] });
  const p = project([web, spec('db')]);
  assert.deepEqual(affectedVms(p, p, ['/p/setup.sh']).vms, ['web']);
  assert.deepEqual(affectedVms(p, p, ['/p/other.sh']).vms, []);
});

test('added VMs are affected, removed ones are reported as removed', () => {
  const before = project([spec('web'), spec('old')]);
  const after = project([spec('web'), spec('new')]);
  assert.deepEqual(affectedVms(before, after, []), { vms: ['new'], removed: ['old'] });
});

test('watched paths: project files plus every referenced file', () => {
  const web = spec('web', {
    image: { kind: 'path', ref: '/p/x.qcow2', format: null, checksum: null, os: null },
    cloudInit: {
      hostname: null,
      user: null,
      sshAuthorizedKeys: [],
      userData: '/p/user-data',
      packages: [],
      writeFiles: [],
      runcmd: [],
      bootcmd: [],
    },
    provision: [{ kind: 'file', source: '/p/app.tgz', destination: '/srv/app.tgz' }],
  });
  assert.deepEqual(referencedPaths(web).sort(), ['/p/app.tgz', '/p/user-data', '/p/x.qcow2']);
  assert.deepEqual(watchedPaths(project([web])).sort(), ['/p/.env', '/p/app.tgz', '/p/tend.yaml', '/p/user-data', '/p/x.qcow2']);
});

test('dependents are found transitively', () => {
  const p = project([spec('db'), spec('api', { dependsOn: ['db'] }), spec('web', { dependsOn: ['api'] }), spec('other')]);
  assert.deepEqual([...dependentsOf(p, ['db'])].sort(), ['api', 'web']);
});
