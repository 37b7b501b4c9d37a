/**
 * `-f a.yaml -f b.yaml` (issue 14 §3): compose's merge rules over tend.yaml files, and errors
 * reported in the file that holds the offending text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';

function files(fs: Record<string, string>): (n: string) => string {
  const d = mkdtempSync(join(tmpdir(), 'tend-merge-'));
  for (const [n, t] of Object.entries(fs)) writeFileSync(join(d, n), t);
  return (n) => join(d, n);
}

const BASE = `name: shop
services:
  web:
    image: debian:12
    vm:
      vcpu: 1
      memory_mb: 1024
    ports: ["8080:80", "127.0.0.1:8443:443", "53/udp"]
    volumes: ["data:/srv/data", "logs:/var/log/app"]
    depends_on: [db]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost/"]
      interval: 10s
    cloud_init:
      packages: [nginx]
    provision:
      - shell: echo base
  db:
    image: debian:12
volumes:
  data: {}
  logs: {}
`;

test('maps merge (later file wins), sequences append, ports/volumes unique by key, healthcheck test replaced', async () => {
  const p = files({
    'tend.yaml': BASE,
    'prod.yaml': `services:
  web:
    vm:
      memory_mb: 4096
    ports: ["9090:80", "127.0.0.1:8443:443"]
    volumes: ["logs-prod:/var/log/app/"]
    depends_on: [db, cache]
    healthcheck:
      test: ["CMD", "true"]
    cloud_init:
      packages: [curl]
    provision:
      - shell: echo prod
  cache:
    image: debian:12
volumes:
  logs-prod: { size: 2 }
`,
  });
  const r = await loadProject([p('tend.yaml'), p('prod.yaml')], { env: {} });
  assert.ok(r.project, r.diagnostics.map(formatDiagnostic).join('\n'));
  const web = r.project.vms.find((v) => v.name === 'web');
  assert.ok(web);
  assert.equal(web.cpus, 1, 'kept from the base');
  assert.equal(web.memory, 4096, 'the override wins');
  assert.deepEqual(
    web.ports.map((x) => `${x.hostAddress}:${x.hostPort}:${x.guestPort}/${x.protocol}`),
    ['127.0.0.1:8080:80/tcp', '127.0.0.1:8443:443/tcp', '127.0.0.1:null:53/udp', '127.0.0.1:9090:80/tcp'],
  );
  assert.deepEqual(
    web.volumes.map((v) => `${v.kind === 'named' ? v.name : v.source}:${v.target}`),
    ['data:/srv/data', 'logs-prod:/var/log/app/'],
  );
  assert.deepEqual(web.dependsOn, ['db', 'cache']);
  assert.deepEqual(web.healthcheck?.test, ['true']);
  assert.equal(web.healthcheck?.interval, 10);
  assert.deepEqual(web.cloudInit?.packages, ['nginx', 'curl']);
  assert.deepEqual(
    web.provision.map((s) => (s.kind === 'shell' && 'inline' in s ? s.inline.join(';') : s.kind)),
    ['echo base', 'echo prod'],
  );
  assert.deepEqual(r.project.vms.map((v) => v.name).sort(), ['cache', 'db', 'web']);
  assert.equal(r.project.name, 'shop');
  assert.equal(r.origins.cache.file, p('prod.yaml'));
  assert.equal(r.origins.web.file, p('tend.yaml'));
});

test('!reset removes a value, !override replaces it whole', async () => {
  const p = files({
    'tend.yaml': BASE,
    'dev.yaml': `services:
  web:
    ports: !reset []
    vm: !override
      vcpu: 4
    depends_on: !reset
`,
  });
  const r = await loadProject([p('tend.yaml'), p('dev.yaml')], { env: {} });
  assert.ok(r.project, r.diagnostics.map(formatDiagnostic).join('\n'));
  const web = r.project.vms.find((v) => v.name === 'web');
  assert.deepEqual(web?.ports, []);
  assert.equal(web?.cpus, 4);
  assert.equal(web?.memory, 1024, 'memory_mb of the base vm map is gone: the default');
  assert.deepEqual(web?.dependsOn, []);
});

test('an error in the override file is reported in the override file, one in the base in the base', async () => {
  const p = files({
    'tend.yaml': BASE.replace('vcpu: 1', 'vcpu: many'),
    'prod.yaml': 'services:\n  web:\n    vm:\n      memroy_mb: 2048\n    ports: ["99999:80"]\n',
  });
  const r = await loadProject([p('tend.yaml'), p('prod.yaml')], { env: {} });
  assert.equal(r.project, null);
  const where = r.diagnostics.map((d) => `${d.file.endsWith('prod.yaml') ? 'prod' : 'base'}:${d.line}:${d.column} ${d.message}`);
  const shown = r.diagnostics.map(formatDiagnostic).join('\n');
  assert.ok(
    where.some((w) => /^prod:4:7 .*memroy_mb/.test(w)),
    shown,
  );
  assert.ok(
    where.some((w) => /^prod:5:13 .*99999/.test(w)),
    shown,
  );
  assert.ok(
    where.some((w) => /^base:6:13 .*vcpu/.test(w)),
    shown,
  );
});

test('each file is interpolated on its own, before the merge; the .env next to the first file serves both', async () => {
  const p = files({
    'tend.yaml': BASE,
    'prod.yaml': 'services:\n  web:\n    vm:\n      memory_mb: ${WEB_MEM}\n',
    '.env': 'WEB_MEM=3072\n',
  });
  const r = await loadProject([p('tend.yaml'), p('prod.yaml')], { env: {} });
  assert.equal(r.project?.vms.find((v) => v.name === 'web')?.memory, 3072, r.diagnostics.map(formatDiagnostic).join('\n'));
  const bad = files({ 'tend.yaml': BASE, 'prod.yaml': 'services:\n  web:\n    image: ${IMG:?which image}\n' });
  const rb = await loadProject([bad('tend.yaml'), bad('prod.yaml')], { env: {} });
  assert.deepEqual(
    rb.diagnostics.map((d) => `${d.file}:${d.line}:${d.column}`),
    [`${bad('prod.yaml')}:3:12`],
  );
});

test('files of different dialects or flavours are not merged: a VM in both is still a duplicate', async () => {
  const p = files({
    'tend.yaml': 'services:\n  web:\n    image: debian:12\n',
    'holos.yaml': 'services:\n  web:\n    image: debian:12\n',
  });
  const r = await loadProject([p('tend.yaml'), p('holos.yaml')], { env: {} });
  assert.equal(r.project, null);
  assert.ok(
    r.diagnostics.some((d) => /already used/.test(d.message)),
    r.diagnostics.map(formatDiagnostic).join('\n'),
  );
});
