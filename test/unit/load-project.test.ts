import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discoverProjectFiles, loadProject, projectNameFromDir } from '../../src/load/project.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';
import { UsageError } from '../../schemas/errors.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'bad', 'project');

// Checks that span VMs run after every file is loaded; they still report file:line:column.
for (const name of readdirSync(dir).sort()) {
  test(`bad project file ${name}`, async () => {
    const file = join(dir, name);
    const m = /^(?:#|\/\/) expect (\d+):(\d+) (.+)$/m.exec(readFileSync(file, 'utf8'));
    assert.ok(m, 'fixture has an expect line');
    const r = await loadProject([file]);
    assert.equal(r.project, null);
    const hit = r.diagnostics.find((d) => d.line === Number(m[1]) && d.column === Number(m[2]) && formatDiagnostic(d).includes(m[3]));
    assert.ok(hit, `expected ${m[1]}:${m[2]} "${m[3]}", got:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
  });
}

function tmp(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'tend-load-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}

test('a VM name used in two files is reported at the second, naming the first', async () => {
  const d = tmp({
    'tend.yaml': 'services:\n  web:\n    image: debian:12\n',
    'VMFile.kdl': 'vm "web" {\n    image "debian:12"\n}\n',
  });
  const r = await loadProject(discoverProjectFiles(d));
  assert.equal(r.project, null);
  const dup = r.diagnostics.find((x) => x.message.includes('already used'));
  assert.ok(dup, r.diagnostics.map(formatDiagnostic).join('\n'));
  assert.match(dup.message, /tend\.yaml:2:3/);
});

test('files of one directory form one project; names unique across them', async () => {
  const d = tmp({
    'tend.yaml': 'name: shop\nservices:\n  web:\n    image: debian:12\n    depends_on: [db]\n',
    'VMFile.kdl': 'vm "db" {\n    image "debian:12"\n}\n',
  });
  const r = await loadProject(discoverProjectFiles(d));
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.project?.name, 'shop');
  assert.deepEqual(r.project?.vms.map((v) => v.name).sort(), ['db', 'web']);
  assert.equal(r.origins.db.file, join(d, 'VMFile.kdl'));
});

test('a missing -f file is a diagnostic, not a crash', async () => {
  const r = await loadProject(['/nonexistent/tend.yaml']);
  assert.equal(r.project, null);
  assert.match(r.diagnostics[0].message, /does not exist/);
});

test('no project file in the directory is a usage error that says what to create', async () => {
  assert.throws(
    () => discoverProjectFiles(tmp({})),
    (e: unknown) => e instanceof UsageError && /tend\.yaml/.test(e.message),
  );
});

test('vms.yml is discovered and read by the ov loader', async () => {
  const d = tmp({ 'vms.yml': 'vms: {}\n' });
  const r = await loadProject(discoverProjectFiles(d));
  assert.equal(r.project, null);
  assert.match(r.diagnostics[0].message, /vms is empty/);
  const ok = tmp({ 'vms.yml': 'vms:\n  web:\n    source: {kind: cloud_image, url: https://example.org/a.qcow2}\n    ram: 2G\n' });
  const r2 = await loadProject(discoverProjectFiles(ok));
  assert.deepEqual(r2.diagnostics, []);
  assert.equal(r2.project?.vms[0].memory, 2048);
  assert.equal(r2.project?.vms[0].backend, 'auto');
});

test('project names come from the directory when the file has none', async () => {
  assert.equal(projectNameFromDir('/home/x/My Project'), 'my-project');
  assert.equal(projectNameFromDir('/___'), 'project');
});

test('every example loads with zero diagnostics', async () => {
  const examples = join(import.meta.dirname, '..', '..', 'examples');
  const dirs = readdirSync(examples);
  assert.ok(dirs.length >= 3);
  for (const ex of dirs) {
    const r = await loadProject(discoverProjectFiles(join(examples, ex)));
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), [], ex);
    assert.ok(r.project && r.project.vms.length > 0, ex);
  }
});

test('the content behind a raw user-data file and a local image is part of the spec', async () => {
  const d = tmp({
    'tend.yaml': 'services:\n  web:\n    image: ./disk.qcow2\n    cloud_init:\n      user_data: ./user-data\n',
    'disk.qcow2': 'not really a disk',
    'user-data': '#cloud-config\nhostname: a\n',
  });
  const first = (await loadProject(discoverProjectFiles(d))).project?.vms[0];
  assert.match(first?.userDataDigest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.match(first?.imageDigest ?? '', /^\d+:\d+$/);
  writeFileSync(join(d, 'user-data'), '#cloud-config\nhostname: b\n');
  writeFileSync(join(d, 'disk.qcow2'), 'another disk, longer');
  const second = (await loadProject(discoverProjectFiles(d))).project?.vms[0];
  assert.notEqual(second?.userDataDigest, first?.userDataDigest);
  assert.notEqual(second?.imageDigest, first?.imageDigest);
});
