import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadCompose } from '../../src/load/compose.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';
import { applyDefaults } from '../../schemas/defaults.js';
import { vmSpecSchema } from '../../schemas/model.js';
import type { DialectResult, LoadedVm } from '../../src/load/common.js';

const root = resolve(import.meta.dirname, '../..');
const validateSpec = new Ajv2020({ allErrors: true, strict: false }).compile(vmSpecSchema);

function loadFile(file: string, env: NodeJS.ProcessEnv = process.env): DialectResult {
  return loadCompose(file, readFileSync(file, 'utf8'), env);
}

function loadText(text: string, files: Record<string, string> = {}, env?: NodeJS.ProcessEnv): DialectResult & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tend-compose-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(resolve(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return { ...loadCompose(join(dir, 'tend.yaml'), text, env ?? { HOME: dir }), dir };
}

function noErrors(r: DialectResult): void {
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), []);
}

function vm(r: DialectResult, name: string): LoadedVm {
  const found = r.vms.find((v) => v.draft.name === name);
  assert.ok(found, `no VM ${name}; have ${r.vms.map((v) => v.draft.name).join(', ')}`);
  return found;
}

function assertCanonical(r: DialectResult): void {
  for (const v of r.vms) {
    const spec = applyDefaults(v.draft);
    assert.ok(validateSpec(spec), `${v.draft.name}: ${JSON.stringify(validateSpec.errors)}`);
  }
}

test('examples/minimal/tend.yaml: one Debian VM, no diagnostics', () => {
  const r = loadFile(join(root, 'examples/minimal/tend.yaml'));
  noErrors(r);
  assert.equal(r.vms.length, 1);
  const box = vm(r, 'box').draft;
  assert.deepEqual(box.image, { kind: 'catalog', ref: 'debian:12' });
  assert.equal(box.memory, 1024);
  assert.match(
    readFileSync(join(root, 'examples/minimal/tend.yaml'), 'utf8').split('\n')[0],
    /yaml-language-server: \$schema=\.\.\/\.\.\/schemas\/tend\.schema\.json/,
  );
  assertCanonical(r);
});

test('examples/compose/tend.yaml: replicas, named volume, host folder, depends_on, healthcheck, provision', () => {
  const dir = join(root, 'examples/compose');
  const r = loadFile(join(dir, 'tend.yaml'));
  noErrors(r);
  assert.equal(r.name, 'shop');
  assert.deepEqual(r.vms.map((v) => v.draft.name).sort(), ['db', 'web-0', 'web-1']);
  assert.deepEqual(r.volumes, { pgdata: { size: 10 } });
  const db = vm(r, 'db').draft;
  assert.equal(db.memory, 2048);
  assert.equal(db.disk, 20);
  assert.equal(db.stopGracePeriod, 60);
  assert.deepEqual(db.volumes, [{ kind: 'named', name: 'pgdata', target: '/var/lib/postgresql', readOnly: false }]);
  assert.deepEqual(db.healthcheck, { test: ['sh', '-c', 'pg_isready -q'], interval: 5, retries: 30, startPeriod: 20, timeout: 3 });
  for (const name of ['web-0', 'web-1']) {
    const web = vm(r, name).draft;
    assert.equal(web.service, 'web');
    assert.deepEqual(web.dependsOn, ['db']);
    assert.deepEqual(web.ports, [{ hostAddress: '127.0.0.1', hostPort: null, guestPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(web.volumes, [{ kind: 'host', source: join(dir, 'site'), target: '/srv/site', readOnly: true }]);
    assert.deepEqual(web.provision, [
      { kind: 'shell', inline: ['apt-get install -y curl'] },
      { kind: 'file', source: join(dir, 'config/nginx-site.conf'), destination: '/etc/nginx/sites-enabled/default' },
      { kind: 'shell', script: join(dir, 'provision/web.sh') },
    ]);
    assert.equal(web.disposable, true);
  }
  assertCanonical(r);
});

test('the full fixture: every accepted key maps to the canonical model', () => {
  const home = mkdtempSync(join(tmpdir(), 'tend-home-'));
  writeFileSync(join(home, 'home-file.txt'), 'x');
  const dir = join(root, 'test/fixtures/good/yaml');
  const r = loadFile(join(dir, 'full.yaml'), { HOME: home });
  noErrors(r);
  assert.equal(r.name, 'full');
  assert.deepEqual(r.volumes, { data: { size: 10 }, logs: { size: 10 } });
  assert.deepEqual(
    r.vms.map((v) => v.draft.name),
    ['db', 'web-0', 'web-1', 'web-2', 'lb', 'worker'],
  );

  const db = vm(r, 'db').draft;
  assert.deepEqual(db.image, {
    kind: 'url',
    ref: 'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
    format: 'qcow2',
    os: 'debian',
    checksum: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  });
  assert.equal(db.cpus, 2);
  assert.equal(db.disk, 1024, '1T is 1024 GiB');
  assert.equal(db.machine, 'pc');
  assert.equal(db.cpuModel, 'max');
  assert.equal(db.firmware, 'uefi', 'vm.uefi: true means uefi');
  assert.deepEqual(db.extraArgs, ['-device', 'virtio-rng-pci']);
  assert.equal(db.stopGracePeriod, 90, '1m30s');
  assert.deepEqual(applyDefaults(db).timeouts, { start: 45, ssh: null, login: 120, cloudInit: null });
  assert.equal(db.accel, 'tcg');
  assert.equal(db.runState, 'stopped');
  assert.equal(db.restart, 'no');
  assert.deepEqual(db.network, { mode: 'tap', bridge: 'br0' });
  assert.deepEqual(db.ssh, { user: 'admin', port: 2222, privateKey: join(dir, 'keys/id_test') });
  assert.deepEqual(db.cloudInit, { userData: join(dir, 'user-data.yaml') });
  assert.deepEqual(db.healthcheck, { test: ['pg_isready'], interval: 2, retries: 5, startPeriod: 10, timeout: 0.5 });
  assert.deepEqual(db.devices, [{ pci: '0000:01:00.0', romFile: join(dir, 'files/gpu.rom') }]);
  assert.deepEqual(db.ports, [
    { hostAddress: '127.0.0.1', hostPort: null, guestPort: 5432, protocol: 'tcp' },
    { hostAddress: '0.0.0.0', hostPort: 15432, guestPort: 5432, protocol: 'tcp' },
    { hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53, protocol: 'udp' },
  ]);
  assert.deepEqual(db.volumes, [
    { kind: 'named', name: 'data', target: '/var/lib/data', readOnly: false },
    { kind: 'host', source: join(dir, 'share'), target: '/mnt/share', readOnly: true },
    { kind: 'named', name: 'logs', target: '/var/log/app', readOnly: false },
  ]);

  const web1 = vm(r, 'web-1').draft;
  assert.equal(web1.restart, 'on-failure', 'from the YAML merge key <<: *common');
  assert.equal(web1.firmware, 'uefi-secure');
  assert.equal(web1.disk, 20);
  assert.equal(web1.cloudInit?.hostname, 'www-1', 'replicas get -<index> on a declared hostname');
  assert.equal(web1.cloudInit?.sshAuthorizedKeys?.length, 2);
  assert.match(web1.cloudInit?.sshAuthorizedKeys?.[0] ?? '', /^ssh-ed25519 \S+ test@fixture$/, 'a .pub path is read');
  assert.deepEqual(web1.cloudInit?.writeFiles?.[1], { path: '/etc/empty', content: '', permissions: null, owner: null });
  assert.deepEqual(
    web1.provision?.map((s) => ('inline' in s ? s.inline : 'script' in s ? s.script : s.source)),
    [['echo one'], ['echo two', 'echo three'], join(dir, 'setup.sh'), join(dir, 'files/hello.txt'), join(home, 'home-file.txt')],
  );
  assert.deepEqual(web1.healthcheck, { test: ['sh', '-c', 'curl -f http://localhost'] });

  const lb = vm(r, 'lb').draft;
  assert.deepEqual(lb.dependsOn, ['web-0', 'web-1', 'web-2', 'db'], 'a replicated dependency expands to all its instances');
  assert.equal(lb.cloudInit, null, 'cloud_init: false turns it off');
  assert.deepEqual(lb.network, { mode: 'none' });
  assert.deepEqual(lb.healthcheck?.test, ['sh', '-c', 'nc -z localhost 80']);
  assert.equal(vm(r, 'worker').draft.healthcheck, null, 'test: ["NONE"] disables the healthcheck');
  assertCanonical(r);
});

test('replica names, and a single replica keeps the service name', () => {
  const r = loadText('services:\n  a:\n    image: alpine\n    replicas: 1\n  b:\n    image: alpine\n    replicas: 2\n');
  noErrors(r);
  assert.deepEqual(
    r.vms.map((v) => [v.draft.name, v.draft.service]),
    [
      ['a', 'a'],
      ['b-0', 'b'],
      ['b-1', 'b'],
    ],
  );
});

test('fieldLocs point at the YAML values, for errors found after loading', () => {
  const text = [
    'services:', //                      1
    '  web:', //                         2
    '    image: debian:12', //           3
    '    vm:', //                        4
    '      memory_mb: 512', //           5
    '    ports: ["80", "8443:443"]', //  6
    '    volumes:', //                   7
    '      - data:/a', //                8
    '      - cache:/b', //               9
    '    depends_on:', //                10
    '      - api', //                    11
    '  api:', //                         12
    '    image: alpine', //              13
    '    replicas: 2', //                14
    'volumes:', //                       15
    '  data: {size: 5}', //              16
    '',
  ].join('\n');
  const r = loadText(text);
  noErrors(r);
  const web = vm(r, 'web');
  const at = (p: string): string => `${web.fieldLocs[p]?.line}:${web.fieldLocs[p]?.column}`;
  assert.equal(at('/name'), '2:3');
  assert.equal(at('/image'), '3:12');
  assert.equal(at('/memory'), '5:18');
  assert.equal(at('/ports/1'), '6:19');
  assert.equal(at('/volumes/1'), '9:9');
  assert.deepEqual(web.draft.dependsOn, ['api-0', 'api-1']);
  assert.equal(at('/dependsOn/0'), '11:9');
  assert.equal(at('/dependsOn/1'), '11:9');
  assert.deepEqual(web.loc, { file: join(r.dir, 'tend.yaml'), line: 2, column: 3 });
  assert.deepEqual(r.volumes, { data: { size: 5 } });
  assert.deepEqual(r.volumeLocs.data, { file: join(r.dir, 'tend.yaml'), line: 16, column: 3 });
  // undeclared volumes are left to the project-wide check: the loader keeps the mount
  assert.deepEqual(web.draft.volumes?.[1], { kind: 'named', name: 'cache', target: '/b', readOnly: false });
});

test('paths are relative to the file and ~ is the HOME of the given env', () => {
  const text =
    'services:\n  web:\n    image: ./img/base.qcow2\n    cloud_init:\n      user_data: ~/ud.yaml\n    provision:\n      - script: ../tend-no-such-script.sh\n';
  const r = loadText(text, { 'img/base.qcow2': 'x', 'h/ud.yaml': '#cloud-config\n' });
  const home = join(r.dir, 'h');
  const r2 = loadCompose(join(r.dir, 'tend.yaml'), text, { HOME: home });
  // the script does not exist (relative to the file's folder): reported at its value
  assert.deepEqual(
    r2.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`),
    [`7:17 the provision script "../tend-no-such-script.sh" does not exist (looked for ${resolve(r.dir, '../tend-no-such-script.sh')})`],
  );
  const web = vm(r2, 'web').draft;
  assert.deepEqual(web.image, { kind: 'path', ref: join(r.dir, 'img/base.qcow2') });
  assert.equal(web.cloudInit?.userData, join(home, 'ud.yaml'));
  assert.deepEqual(web.provision, [], 'a step whose file is missing is left out');
});

test('units: sizes with units, numbers of GiB, durations, default volume size', () => {
  const r = loadText(
    [
      'services:',
      '  a:',
      '    image: alpine',
      '    vm: {disk_size: 2048M, memory_mb: 4096}',
      '    stop_grace_period: 2m',
      '    healthcheck: {test: "true", interval: 1m30s, timeout: 10, start_period: 0s}',
      'volumes:',
      '  big: {size: 1T}',
      '  plain: {size: 3}',
      '  dflt:',
      '',
    ].join('\n'),
  );
  noErrors(r);
  const a = vm(r, 'a').draft;
  assert.equal(a.disk, 2);
  assert.equal(a.memory, 4096);
  assert.equal(a.stopGracePeriod, 120);
  assert.deepEqual(a.healthcheck, { test: ['sh', '-c', 'true'], interval: 90, timeout: 10, startPeriod: 0 });
  assert.deepEqual(r.volumes, { big: { size: 1024 }, plain: { size: 3 }, dflt: { size: 10 } });
});

test('compose compatibility: version, x- extension keys and the depends_on map form are accepted', () => {
  const r = loadText(
    [
      'version: "3.8"',
      'x-defaults: {anything: [1, 2]}',
      'services:',
      '  db: {image: alpine, x-owner: team-a}',
      '  web:',
      '    image: alpine',
      '    depends_on:',
      '      db: {condition: service_healthy, required: true}',
      '',
    ].join('\n'),
  );
  noErrors(r);
  assert.deepEqual(vm(r, 'web').draft.dependsOn, ['db']);
});

test('several mistakes in one file are all reported, in file order', () => {
  const r = loadText(
    'services:\n  web:\n    image: debian:12\n    vm: {vcpu: 0, memory_mb: 1G}\n    ports: ["99999"]\n    restart: sometimes\n',
  );
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.line}:${d.column}`),
    ['4:16', '4:30', '5:13', '6:14'],
  );
  assert.match(r.diagnostics[1].message, /memory_mb is in MiB: write memory_mb: 1024/);
});

test('no input makes the loader throw', () => {
  const inputs = [
    '',
    '42',
    '- a\n- b\n',
    'services: [1, 2]\n',
    'services:\n  web: 5\n',
    'a: &x [*x]\n',
    '---\nservices: {}\n---\nx: 1\n',
    'services:\n  web:\n    image: [1]\n    vm: "big"\n    ports: [{}, null, true]\n    volumes: [3]\n    provision: [null, {}, {file: 3}]\n',
    'services:\n  web:\n    image: debian:12\n    healthcheck: {test: []}\n    cloud_init: {write_files: [{}], ssh_authorized_keys: [1]}\n',
    'services:\n  "":\n    image: debian:12\n',
    'services:\n  ? [a]\n  : {image: x}\n',
    '\ufeffservices: {}\n',
    'services: !!binary aGVsbG8=\n',
  ];
  for (const t of inputs) {
    const r = loadCompose('/nonexistent/tend.yaml', t, {});
    assert.ok(Array.isArray(r.diagnostics), t);
    for (const d of r.diagnostics) assert.ok(d.line >= 1 && d.column >= 1 && d.message.length > 0, `${t}: ${JSON.stringify(d)}`);
  }
});

test('schemas/tend.schema.json: strict 2020-12 schema, a description on every property', () => {
  const schema = JSON.parse(readFileSync(join(root, 'schemas/tend.schema.json'), 'utf8'));
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  new Ajv2020({ strict: true, allowUnionTypes: true }).compile(schema);
  const missing: string[] = [];
  const walk = (node: unknown, where: string): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.properties && typeof n.properties === 'object') {
      for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
        const ref = typeof v.$ref === 'string' ? schema.$defs[v.$ref.replace('#/$defs/', '')] : undefined;
        if (!v.description && !ref?.description) missing.push(`${where}.${k}`);
      }
    }
    for (const [k, v] of Object.entries(n)) if (typeof v === 'object') walk(v, `${where}.${k}`);
  };
  walk(schema, '#');
  assert.deepEqual(missing, []);
});
