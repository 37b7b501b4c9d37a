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
      /^https:\/\/(cloud\.debian\.org|cloud-images\.ubuntu\.com|dl-cdn\.alpinelinux\.org|download\.fedoraproject\.org|geo\.mirror\.pkgbuild\.com|dl\.rockylinux\.org|repo\.almalinux\.org)\//,
      e.name,
    );
    assert.ok(e.checksum !== null || (e.checksumUrl !== null && e.checksumUrl.startsWith('https://')), e.name);
  }
  assert.equal(catalogEntry('debian:12')?.buildable, true);
});

test('the distros these tools name most: Arch, Fedora current, Alpine current, Rocky, Alma, with pinned digests', () => {
  for (const [name, canonical, user] of [
    ['arch', 'arch', 'arch'],
    ['archlinux', 'arch', 'arch'],
    ['fedora', 'fedora:44', 'fedora'],
    ['fedora:43', 'fedora:43', 'fedora'],
    ['alpine:3.23', 'alpine:3.23', 'alpine'],
    ['alpine:3.21', 'alpine:3.21', 'alpine'],
    ['rocky', 'rocky:10', 'rocky'],
    ['rocky:9', 'rocky:9', 'rocky'],
    ['almalinux', 'almalinux:10', 'almalinux'],
    ['almalinux:9', 'almalinux:9', 'almalinux'],
  ]) {
    const e = catalogEntry(name);
    assert.equal(e?.name, canonical, name);
    assert.equal(e?.user, user, name);
    assert.match(e?.checksum ?? '', /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/, name);
    // a pinned digest belongs to one file: the URL names a version, never "latest"/"current"
    assert.doesNotMatch(e?.url ?? '', /latest|current/, name);
  }
  assert.equal(catalogEntry('alpine:3.23')?.firmware, 'uefi', "Alpine's NoCloud images from 3.21 on are UEFI builds");
  assert.equal(catalogEntry('rocky:9')?.firmware, undefined);
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
