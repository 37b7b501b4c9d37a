/**
 * Compose habits through the built CLI (issue 14 §3): `-f base -f override` merges in the order
 * given, `${VAR}` comes from the environment or the project's .env, and a failed `${VAR:?}` in
 * the override is reported in the override file, exit 3, nothing planned.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ensureBuilt, project, tend } from './cli-harness.js';

before(() => ensureBuilt());

const BASE = 'name: shop\nservices:\n  web:\n    image: debian:12\n    vm:\n      vcpu: 1\n      memory_mb: 1024\n    ports: ["8080:80"]\n';
const PROD = 'services:\n  web:\n    vm:\n      memory_mb: ${WEB_MEM:?set WEB_MEM}\n    ports: ["${WEB_PORT:-9090}:443"]\n';

test('-f tend.yaml -f prod.yaml: merged in order, variables from the environment and .env', () => {
  const p = project({ 'tend.yaml': BASE, 'prod.yaml': PROD, '.env': 'WEB_MEM=3072\n' });
  const st = tend(['status', 'web', '--json', '-f', 'tend.yaml', '-f', 'prod.yaml'], p, { WEB_PORT: '9443' });
  assert.equal(st.code, 0, st.stderr);
  const spec = (JSON.parse(st.stdout) as { spec: { cpus: number; memory: number; ports: { hostPort: number; guestPort: number }[] } }).spec;
  assert.equal(spec.cpus, 1, 'from tend.yaml');
  assert.equal(spec.memory, 3072, 'prod.yaml, from .env');
  assert.deepEqual(
    spec.ports.map((x) => `${x.hostPort}:${x.guestPort}`),
    ['8080:80', '9443:443'],
  );
  // the order of -f matters: the later file wins
  const swapped = tend(['status', 'web', '--json', '-f', 'prod.yaml', '-f', 'tend.yaml'], p);
  assert.equal(swapped.code, 0, swapped.stderr);
  assert.equal((JSON.parse(swapped.stdout) as { spec: { memory: number } }).spec.memory, 1024);
  const v = tend(['validate', '--json', '-f', 'tend.yaml', '-f', 'prod.yaml'], p);
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual((JSON.parse(v.stdout) as { files: string[] }).files, [join(p.cwd, 'tend.yaml'), join(p.cwd, 'prod.yaml')]);
});

test('a failed ${VAR:?} in the override: exit 3 with prod.yaml:line:column, nothing done', () => {
  const p = project({ 'tend.yaml': BASE, 'prod.yaml': PROD });
  const r = tend(['up', '-f', 'tend.yaml', '-f', 'prod.yaml'], p, { WEB_MEM: '' });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /prod\.yaml:4:18: error: required variable WEB_MEM is empty: set WEB_MEM/);
  assert.match(r.stderr, /nothing was changed/);
});
