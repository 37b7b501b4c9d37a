/** `backend`, `connect` and `libvirt.snippets` in tend.yaml and VMFile.kdl reach the canonical model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';

async function load(name: string, text: string) {
  const dir = await mkdtemp(join(tmpdir(), 'tend-backend-fields-'));
  await writeFile(join(dir, name), text.replaceAll('/img.qcow2', join(dir, 'img.qcow2')));
  await writeFile(join(dir, 'img.qcow2'), '');
  return loadProject([join(dir, name)], { env: { HOME: dir }, cwd: dir });
}

test('tend.yaml: backend, connect and libvirt.snippets per service', async () => {
  const r = await load(
    'tend.yaml',
    [
      'services:',
      '  web:',
      '    image: debian:12',
      '    backend: libvirt',
      '    connect: qemu:///session',
      '    libvirt:',
      '      snippets:',
      `        - "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"`,
      '  db:',
      '    image: debian:12',
      '',
    ].join('\n'),
  );
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic), []);
  const web = r.project?.vms.find((v) => v.name === 'web');
  assert.equal(web?.backend, 'libvirt');
  assert.equal(web?.connect, 'qemu:///session');
  assert.deepEqual(web?.libvirt?.snippets, ["<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"]);
  const db = r.project?.vms.find((v) => v.name === 'db');
  assert.equal(db?.backend, undefined, 'not written: the flag, the environment or qemu decide');
  assert.equal(db?.libvirt, undefined);
});

test('tend.yaml: an unknown backend is an error at its position', async () => {
  const r = await load('tend.yaml', 'services:\n  web:\n    image: debian:12\n    backend: virtualbox\n');
  const errs = r.diagnostics.filter((d) => d.severity === 'error');
  assert.equal(errs.length, 1, errs.map(formatDiagnostic).join('\n'));
  assert.equal(errs[0].line, 4);
  assert.match(formatDiagnostic(errs[0]), /qemu.*libvirt.*auto|libvirt/);
});

test('VMFile.kdl: backend and connect', async () => {
  const r = await load('VMFile.kdl', 'vm "web" {\n    image "/img.qcow2"\n    backend "libvirt"\n    connect "qemu:///system"\n}\n');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic), []);
  assert.equal(r.project?.vms[0].backend, 'libvirt');
  assert.equal(r.project?.vms[0].connect, 'qemu:///system');
  const bad = await load('VMFile.kdl', 'vm "web" {\n    image "/img.qcow2"\n    backend "xen"\n}\n');
  const errs = bad.diagnostics.filter((d) => d.severity === 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0].line, 3);
});
