/**
 * `tend import --all` through the built CLI, with a fake `virsh` on PATH that prints canned
 * `list --all --name` and `dumpxml` output: one tend.yaml with a service per domain, a warning
 * on stderr (and in --json) for each part that was not imported as is, and a file tend validates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, project, tend } from './cli-harness.js';

ensureBuilt();

const dom = (name: string, image: string, extra: string) => `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  ${extra}
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda'/></disk>
    <interface type='network'><source network='default'/></interface>
  </devices>
</domain>`;

function fakeVirsh(dir: string): NodeJS.ProcessEnv {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(dir, 'web.xml'), dom('web', join(dir, 'web.qcow2'), "<cpu mode='host-passthrough'/>"));
  writeFileSync(join(dir, 'db.xml'), dom('db', join(dir, 'db.qcow2'), "<cpu mode='custom'><model>Haswell</model></cpu>"));
  writeFileSync(
    join(bin, 'virsh'),
    `#!/bin/sh
[ "$1" = -c ] && shift 2
case "$1 $2 $3" in
  "list --all --name") printf 'web\\ndb\\n\\n' ;;
  "dumpxml web ") cat '${join(dir, 'web.xml')}' ;;
  "dumpxml db ") cat '${join(dir, 'db.xml')}' ;;
  *) echo "error: unexpected arguments: $*" >&2; exit 1 ;;
esac
`,
  );
  chmodSync(join(bin, 'virsh'), 0o755);
  writeFileSync(join(dir, 'web.qcow2'), '');
  writeFileSync(join(dir, 'db.qcow2'), '');
  return { PATH: `${bin}:${process.env.PATH ?? ''}` };
}

test('tend import --all writes every listed domain as a service and warns about the NAT network', () => {
  const p = project({});
  const env = fakeVirsh(p.cwd);
  const r = tend(['import', '--all'], p, env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*tend\.yaml \(services web, db\)/);
  assert.match(
    r.stderr,
    /^warning: web: devices\/interface\[1\]: libvirt network "default" \(NAT by libvirt\) became tend's user-mode networking/m,
  );
  assert.match(r.stderr, /^warning: db: devices\/interface\[1\]:/m);
  const yaml = readFileSync(join(p.cwd, 'tend.yaml'), 'utf8');
  assert.match(yaml, /web:\n(.*\n)*? {6}cpu_model: host/);
  assert.match(yaml, /cpu_model: Haswell/);
  const v = tend(['validate'], p, env);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('tend import --all --json carries the services and the warnings with their domain', () => {
  const p = project({});
  const env = fakeVirsh(p.cwd);
  const r = tend(['--json', 'import', '--all', '-o', '-'], p, env);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as {
    services: { name: string }[];
    file: null;
    warnings: { domain?: string; part: string; message: string }[];
  };
  assert.deepEqual(
    j.services.map((s) => s.name),
    ['web', 'db'],
  );
  assert.equal(j.file, null);
  assert.deepEqual(
    j.warnings.map((w) => `${w.domain}:${w.part}`),
    ['web:devices/interface[1]', 'db:devices/interface[1]'],
  );
  const bad = tend(['import', '--all', 'web'], p, env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /not several/);
});
