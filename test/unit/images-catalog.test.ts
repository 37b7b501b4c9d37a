import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyDefaults } from '../../schemas/defaults.js';
import type { ImageSource } from '../../schemas/model.js';
import { CATALOG, catalogEntry, catalogNames } from '../../src/images/catalog.js';
import { sshUser } from '../../src/ssh/user.js';

test('catalog names and aliases resolve to one entry each', () => {
  assert.equal(catalogEntry('debian:12')?.name, 'debian:12');
  assert.equal(catalogEntry('debian:bookworm')?.name, 'debian:12');
  assert.equal(catalogEntry('ubuntu:24.04')?.name, 'ubuntu:noble');
  assert.equal(catalogEntry('Ubuntu:Noble')?.name, 'ubuntu:noble');
  assert.equal(catalogEntry('alpine')?.os, 'alpine');
  assert.ok(catalogEntry('alpine')?.url.includes('nocloud'), 'alpine is the NoCloud variant');
  assert.equal(catalogEntry('fedora:41')?.user, 'fedora');
  assert.equal(catalogEntry('debian:13')?.user, 'debian');
  assert.equal(catalogEntry('ubuntu:jammy')?.user, 'ubuntu');
  assert.equal(catalogEntry('windows:11'), undefined);
  const names = catalogNames();
  assert.equal(new Set(names).size, names.length, 'no name is used twice');
});

test('every entry is an https official URL and can be verified (pinned digest or checksum file)', () => {
  for (const e of CATALOG) {
    assert.match(
      e.url,
      /^https:\/\/(cloud\.debian\.org|cloud-images\.ubuntu\.com|dl-cdn\.alpinelinux\.org|download\.fedoraproject\.org)\//,
      e.name,
    );
    assert.ok(e.checksum !== null || (e.checksumUrl !== null && e.checksumUrl.startsWith('https://')), e.name);
  }
  assert.equal(catalogEntry('debian:12')?.buildable, true);
});

const vm = (
  image: Partial<ImageSource> & { ref: string },
  extra: Parameters<typeof applyDefaults>[0] extends infer D ? Partial<D> : never = {},
) => applyDefaults({ name: 'web', ...extra, image: { kind: 'catalog', ...image } as ImageSource });

test('sshUser: ssh.user, then cloud-init user, then the image convention, then "tend"', () => {
  assert.equal(sshUser(vm({ ref: 'debian:12' }, { ssh: { user: 'admin' }, cloudInit: { user: 'ops' } })), 'admin');
  assert.equal(sshUser(vm({ ref: 'debian:12' }, { cloudInit: { user: 'ops' } })), 'ops');
  assert.equal(sshUser(vm({ ref: 'debian:12' })), 'debian');
  assert.equal(sshUser(vm({ ref: 'ubuntu:noble' })), 'ubuntu');
  assert.equal(sshUser(vm({ kind: 'url', ref: 'https://x/f.qcow2', os: 'Fedora' })), 'fedora');
  assert.equal(sshUser(vm({ kind: 'path', ref: '/img/alpine.qcow2', os: 'alpine' })), 'alpine');
  assert.equal(sshUser(vm({ kind: 'path', ref: '/img/custom.qcow2' })), 'tend');
  assert.equal(sshUser(vm({ kind: 'path', ref: '/img/custom.qcow2', os: 'plan9' })), 'tend');
});
