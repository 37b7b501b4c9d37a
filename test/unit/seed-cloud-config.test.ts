import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse } from 'yaml';
import { applyDefaults } from '../../schemas/defaults.js';
import { renderMetaData, renderUserData } from '../../src/seed/cloud-config.js';
import { NotFoundError } from '../../schemas/errors.js';

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
  manage_etc_hosts: string;
  users: { name: string; sudo: string; shell: string; ssh_authorized_keys: string[] }[];
  ssh_pwauth?: boolean;
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
  // /etc/hosts names the host (sudo resolves it), and only that line is managed
  assert.equal(doc.manage_etc_hosts, 'localhost');
  // password logins off by an sshd drop-in written before sshd starts, not ssh_pwauth (which
  // restarts sshd in the middle of cloud-init)
  assert.equal(doc.ssh_pwauth, undefined);
  assert.equal(doc.users.length, 1);
  assert.equal(doc.users[0].name, 'debian');
  assert.equal(doc.users[0].sudo, 'ALL=(ALL) NOPASSWD:ALL');
  assert.equal(doc.users[0].shell, '/bin/bash');
  assert.deepEqual(doc.users[0].ssh_authorized_keys, [KEY, EXTRA]);
  assert.deepEqual(doc.packages, ['nginx', 'curl']);
  assert.deepEqual(doc.write_files, [
    { path: '/etc/ssh/sshd_config.d/60-tend.conf', content: 'PasswordAuthentication no\n', permissions: '0644' },
    { path: '/etc/motd', content: 'hello\nworld\n', permissions: '0644' },
  ]);
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
  // no write_files of its own: only tend's sshd drop-in
  assert.deepEqual(
    doc.write_files?.map((f) => f.path),
    ['/etc/ssh/sshd_config.d/60-tend.conf'],
  );
});

test('a raw user-data file is passed through as is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-ud-'));
  const raw = '#!/bin/sh\necho "not cloud-config: a script"\n';
  writeFileSync(join(dir, 'user-data'), raw);
  const v = applyDefaults({
    name: 'web',
    image: { kind: 'catalog', ref: 'debian:12' },
    cloudInit: { userData: join(dir, 'user-data'), packages: ['ignored'] },
  });
  assert.equal(renderUserData(v, { user: 'debian', publicKey: KEY }), raw);
  const missing = applyDefaults({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, cloudInit: { userData: join(dir, 'nope') } });
  assert.throws(
    () => renderUserData(missing, { user: 'debian', publicKey: KEY }),
    (e: unknown) => e instanceof NotFoundError && e.reason === 'UserDataNotFound',
  );
});

test("a raw user-data file with mounts or the project network: multipart, the file untouched first, tend's bootcmd merged in front", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-ud-'));
  const raw = '#cloud-config\nbootcmd: [echo mine]\nruncmd: [echo ünïcode]\n';
  writeFileSync(join(dir, 'user-data'), raw);
  const v = applyDefaults({
    name: 'db',
    image: { kind: 'catalog', ref: 'debian:12' },
    cloudInit: { userData: join(dir, 'user-data') },
    volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }],
  });
  const text = renderUserData(v, { user: 'debian', publicKey: KEY });
  const m = /^Content-Type: multipart\/mixed; boundary="([^"]+)"\nMIME-Version: 1\.0\n\n/.exec(text);
  assert.ok(m, text.slice(0, 200));
  const parts = text
    .split(`--${m[1]}`)
    .slice(1, -1)
    .map((p) => {
      const [head, body] = p.trim().split('\n\n');
      return { head, body: Buffer.from(body.replace(/\n/g, ''), 'base64').toString('utf8') };
    });
  assert.ok(text.trimEnd().endsWith(`--${m[1]}--`));
  assert.equal(parts.length, 2);
  assert.match(parts[0].head, /^Content-Type: text\/plain;.*\n(.*\n)*Content-Transfer-Encoding: base64/m);
  assert.equal(parts[0].body, raw, "the user's file, byte for byte (cloud-init detects its type from its first line)");
  assert.match(parts[1].head, /^Content-Type: text\/cloud-config;/);
  const tend = parse(parts[1].body) as { merge_how: { name: string; settings: string[] }[]; bootcmd: string[] };
  assert.deepEqual(tend.merge_how, [
    { name: 'list', settings: ['prepend'] },
    { name: 'dict', settings: ['no_replace', 'recurse_list'] },
  ]);
  assert.equal(tend.bootcmd.length, 1);
  assert.match(tend.bootcmd[0], /\/data/);
});

test('a raw user-data file that is MIME itself is nested with its own headers; a gzipped one is unpacked first', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-ud-'));
  const mime =
    'Content-Type: multipart/mixed; boundary="user"\nMIME-Version: 1.0\n\n--user\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--user--\n';
  writeFileSync(join(dir, 'mime'), mime);
  writeFileSync(join(dir, 'gz'), gzipSync('#cloud-config\nruncmd: [echo zipped]\n'));
  const withVolume = (file: string) =>
    applyDefaults({
      name: 'db',
      image: { kind: 'catalog', ref: 'debian:12' },
      cloudInit: { userData: join(dir, file) },
      volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }],
    });
  const nested = renderUserData(withVolume('mime'), { user: 'debian', publicKey: KEY });
  assert.ok(nested.includes(`--==tend-user-data==\n${mime.trimEnd()}\n--==tend-user-data==\n`), nested);
  const unzipped = renderUserData(withVolume('gz'), { user: 'debian', publicKey: KEY });
  const first = unzipped.split('--==tend-user-data==')[1].trim().split('\n\n')[1];
  assert.equal(Buffer.from(first.replace(/\n/g, ''), 'base64').toString('utf8'), '#cloud-config\nruncmd: [echo zipped]\n');
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

test("an adopted account (vms.yml base_user) keeps the image's default user and only gets the keys; timezone and network-config are written", async () => {
  const { seedFiles } = await import('../../src/seed/seed.js');
  const a = applyDefaults({
    name: 'arch',
    image: { kind: 'url', ref: 'https://example.org/arch.qcow2' },
    cloudInit: { user: 'arch', adoptUser: true, timezone: 'UTC', networkConfig: { version: 2, ethernets: { eth0: { dhcp4: true } } } },
  });
  const files = seedFiles(a, { instanceId: 'i-1', publicKey: KEY, user: 'arch' });
  const doc = parse(files['user-data']) as { users: unknown[]; timezone: string };
  assert.deepEqual(doc.users, ['default', { name: 'arch', ssh_authorized_keys: [KEY] }]);
  assert.equal(doc.timezone, 'UTC');
  assert.deepEqual(parse(files['network-config']), { version: 2, ethernets: { eth0: { dhcp4: true } } });
  // without them: one created user with sudo, no timezone, no network-config
  const b = seedFiles(vm, { instanceId: 'i-2', publicKey: KEY, user: 'debian' });
  const docB = parse(b['user-data']) as Partial<UserData> & { timezone?: string };
  assert.equal(docB.users?.[0].sudo, 'ALL=(ALL) NOPASSWD:ALL');
  assert.equal(docB.timezone, undefined);
  assert.equal(b['network-config'], undefined);
});
