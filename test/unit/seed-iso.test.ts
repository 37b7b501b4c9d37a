import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { applyDefaults } from '../../schemas/defaults.js';
import { buildIso } from '../../src/seed/iso9660.js';
import { writeSeed } from '../../src/seed/seed.js';

// Test-only tools: isoinfo (genisoimage), bsdtar (libarchive-tools), blkid (util-linux).
const dir = mkdtempSync(join(tmpdir(), 'tend-iso-'));
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

test('buildIso: label cidata, Joliet names read back exactly, contents intact', () => {
  const big = 'x'.repeat(5000) + '\nend\n';
  const files = { 'user-data': '#cloud-config\nhostname: web\n', 'meta-data': 'instance-id: i-1\n', 'network-config': big, empty: '' };
  const iso = join(dir, 'a.iso');
  writeFileSync(iso, buildIso('cidata', files));

  assert.match(run('isoinfo', ['-d', '-i', iso]), /Volume id: cidata/);
  assert.match(run('isoinfo', ['-d', '-i', iso]), /Joliet with UCS level 3 found/);
  assert.match(run('blkid', ['-p', '-o', 'export', iso]), /^LABEL=cidata$/m);
  assert.match(run('blkid', ['-p', '-o', 'export', iso]), /^TYPE=iso9660$/m);

  const listing = run('isoinfo', ['-J', '-f', '-i', iso]).split('\n').filter(Boolean).sort();
  assert.deepEqual(listing, ['/empty', '/meta-data', '/network-config', '/user-data']);
  for (const [name, content] of Object.entries(files)) {
    assert.equal(run('isoinfo', ['-J', '-x', `/${name}`, '-i', iso]), content, name);
  }
  // an independent reader: libarchive
  const out = join(dir, 'x');
  execFileSync('mkdir', ['-p', out]);
  execFileSync('bsdtar', ['-xf', iso, '-C', out]);
  assert.deepEqual(readdirSync(out).sort(), ['empty', 'meta-data', 'network-config', 'user-data']);
  assert.equal(run('cat', [join(out, 'network-config')]), big);
});

test('buildIso is deterministic and rejects names that cannot be files', () => {
  assert.deepEqual(buildIso('cidata', { a: '1', b: '2' }), buildIso('cidata', { b: '2', a: '1' }));
  assert.throws(() => buildIso('cidata', { 'a/b': 'x' }));
  assert.throws(() => buildIso('cidata', { ['n'.repeat(65)]: 'x' }));
});

test('writeSeed writes a cidata ISO with user-data and meta-data for the VM', async () => {
  const vm = applyDefaults({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, cloudInit: { packages: ['htop'] } });
  const iso = join(dir, 'vm', 'seed.iso');
  await writeSeed(vm, { isoPath: iso, instanceId: 'i-42', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey tend@web', user: 'debian' });
  assert.match(run('blkid', ['-p', '-o', 'export', iso]), /^LABEL=cidata$/m);
  assert.deepEqual(run('isoinfo', ['-J', '-f', '-i', iso]).split('\n').filter(Boolean).sort(), ['/meta-data', '/user-data']);
  const ud = parse(run('isoinfo', ['-J', '-x', '/user-data', '-i', iso])) as { users: { name: string }[]; packages: string[] };
  assert.equal(ud.users[0].name, 'debian');
  assert.deepEqual(ud.packages, ['htop']);
  assert.match(run('isoinfo', ['-J', '-x', '/meta-data', '-i', iso]), /instance-id: i-42/);
  assert.deepEqual(readdirSync(join(dir, 'vm')), ['seed.iso'], 'no temp file left');
});
