import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { applyDefaults } from '../../schemas/defaults.js';
import { renderMetaData, renderUserData } from '../../src/seed/cloud-config.js';
import { NotFoundError } from '../../src/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGeneratedKeyGeneratedKeyGeneratedKey00 tend@web';
const EXTRA = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUserKeyUserKeyUserKeyUserKeyUserKey0000 me@laptop';

const vm = applyDefaults({
  name: 'web',
  image: { kind: 'catalog', ref: 'debian:12' },
  cloudInit: {
    sshAuthorizedKeys: [EXTRA],
    packages: ['nginx', 'curl'],
    writeFiles: [{ path: '/etc/motd', content: 'hello\nworld\n', permissions: '0644', owner: null }],
    runcmd: ['systemctl enable --now nginx'],
    bootcmd: ['echo booting > /dev/console'],
  },
});

interface UserData {
  hostname: string;
  users: { name: string; sudo: string; shell: string; ssh_authorized_keys: string[] }[];
  ssh_pwauth: boolean;
  packages: string[];
  write_files: { path: string; content: string; permissions?: string; owner?: string }[];
  runcmd: string[];
  bootcmd: string[];
}

test('user-data is #cloud-config YAML with the user, sudo, keys, hostname and every section', () => {
  const text = renderUserData(vm, { user: 'debian', publicKey: KEY });
  assert.ok(text.startsWith('#cloud-config\n'));
  const doc = parse(text) as UserData;
  assert.equal(doc.hostname, 'web');
  assert.equal(doc.ssh_pwauth, false);
  assert.equal(doc.users.length, 1);
  assert.equal(doc.users[0].name, 'debian');
  assert.equal(doc.users[0].sudo, 'ALL=(ALL) NOPASSWD:ALL');
  assert.equal(doc.users[0].shell, '/bin/bash');
  assert.deepEqual(doc.users[0].ssh_authorized_keys, [KEY, EXTRA]);
  assert.deepEqual(doc.packages, ['nginx', 'curl']);
  assert.deepEqual(doc.write_files, [{ path: '/etc/motd', content: 'hello\nworld\n', permissions: '0644' }]);
  assert.deepEqual(doc.runcmd, ['systemctl enable --now nginx']);
  assert.deepEqual(doc.bootcmd, ['echo booting > /dev/console']);
});

test('hostname override, empty sections omitted, alpine gets /bin/sh', () => {
  const a = applyDefaults({ name: 'db', image: { kind: 'catalog', ref: 'alpine' }, cloudInit: { hostname: 'database' } });
  const doc = parse(renderUserData(a, { user: 'alpine', publicKey: KEY })) as Partial<UserData>;
  assert.equal(doc.hostname, 'database');
  assert.equal(doc.users?.[0].shell, '/bin/sh');
  assert.equal(doc.packages, undefined);
  assert.equal(doc.runcmd, undefined);
  assert.equal(doc.write_files, undefined);
});

test('a raw user-data file is passed through as is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-ud-'));
  const raw = '#!/bin/sh\necho "not cloud-config: a script"\n';
  writeFileSync(join(dir, 'user-data'), raw);
  const v = applyDefaults({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, cloudInit: { userData: join(dir, 'user-data'), packages: ['ignored'] } });
  assert.equal(renderUserData(v, { user: 'debian', publicKey: KEY }), raw);
  const missing = applyDefaults({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, cloudInit: { userData: join(dir, 'nope') } });
  assert.throws(() => renderUserData(missing, { user: 'debian', publicKey: KEY }), (e: unknown) => e instanceof NotFoundError && e.reason === 'UserDataNotFound');
});

test('meta-data has the instance-id and local-hostname', () => {
  const doc = parse(renderMetaData(vm, 'i-0123abcd')) as Record<string, string>;
  assert.deepEqual(doc, { 'instance-id': 'i-0123abcd', 'local-hostname': 'web' });
});

test('cloud-init off (null) still gives a usable user-data for the SSH key', () => {
  const v = applyDefaults({ name: 'bare', image: { kind: 'path', ref: '/x.qcow2' }, cloudInit: null });
  const doc = parse(renderUserData(v, { user: 'tend', publicKey: KEY })) as UserData;
  assert.deepEqual(doc.users[0].ssh_authorized_keys, [KEY]);
  assert.equal(doc.hostname, 'bare');
});
