/** `tend ssh` user and key resolution, in vmctl's documented order. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyDefaults } from '../../schemas/defaults.js';
import { TendError } from '../../schemas/errors.js';
import { requireSshKeys, resolveSshKeys, resolveSshUser } from '../../src/ssh/resolve.js';

const VMDIR = '/state/projects/p-1234/vms/web';
const HOME = '/home/ann';
const has =
  (...paths: string[]) =>
  (p: string) =>
    paths.includes(p);

describe('resolveSshKeys', () => {
  test('order: generated key, then --key, then ~/.ssh id_ed25519, id_ecdsa, id_rsa (only those that exist)', () => {
    const keys = resolveSshKeys({
      vmDir: VMDIR,
      flagKey: '/keys/mine',
      home: HOME,
      exists: has(`${VMDIR}/id_ed25519`, '/keys/mine', `${HOME}/.ssh/id_rsa`, `${HOME}/.ssh/id_ed25519`),
    });
    assert.deepEqual(
      keys.map((k) => [k.source, k.path]),
      [
        ['generated', `${VMDIR}/id_ed25519`],
        ['flag', '/keys/mine'],
        ['home', `${HOME}/.ssh/id_ed25519`],
        ['home', `${HOME}/.ssh/id_rsa`],
      ],
    );
  });

  test("the file's private-key takes --key's place when no --key is given; --key wins over it", () => {
    const exists = has('/proj/keys/deploy', '/keys/mine', `${HOME}/.ssh/id_ecdsa`);
    assert.deepEqual(
      resolveSshKeys({ vmDir: VMDIR, fileKey: '/proj/keys/deploy', home: HOME, exists }).map((k) => k.path),
      ['/proj/keys/deploy', `${HOME}/.ssh/id_ecdsa`],
    );
    assert.deepEqual(
      resolveSshKeys({ vmDir: VMDIR, fileKey: '/proj/keys/deploy', flagKey: '/keys/mine', home: HOME, exists }).map((k) => k.path),
      ['/keys/mine', `${HOME}/.ssh/id_ecdsa`],
    );
  });

  test('--key is resolved against the working directory and ~ is expanded', () => {
    const exists = has('/work/dir/k', `${HOME}/k2`);
    assert.equal(resolveSshKeys({ vmDir: VMDIR, flagKey: 'k', cwd: '/work/dir', home: HOME, exists })[0].path, '/work/dir/k');
    assert.equal(resolveSshKeys({ vmDir: VMDIR, flagKey: '~/k2', home: HOME, exists })[0].path, `${HOME}/k2`);
  });

  test('a --key that does not exist is an error, not silently skipped', () => {
    assert.throws(
      () => resolveSshKeys({ vmDir: VMDIR, flagKey: '/nope', home: HOME, exists: has() }),
      (e: unknown) => {
        assert.ok(e instanceof TendError);
        assert.equal(e.reason, 'SshKeyNotFound');
        assert.match(e.message, /--key \/nope/);
        return true;
      },
    );
  });

  test('no key anywhere: the error lists every place looked at', () => {
    assert.throws(
      () => requireSshKeys({ vmDir: VMDIR, home: HOME, exists: has() }),
      (e: unknown) => {
        assert.ok(e instanceof TendError);
        assert.match(e.message, new RegExp(`${VMDIR}/id_ed25519.*${HOME}/\\.ssh/id_ed25519.*id_ecdsa.*id_rsa`));
        return true;
      },
    );
  });
});

describe('resolveSshUser', () => {
  const vm = (o: Parameters<typeof applyDefaults>[0]) => applyDefaults(o);
  test('--user beats everything', () => {
    assert.equal(resolveSshUser(vm({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, ssh: { user: 'ops' } }), 'root'), 'root');
  });
  test('then the file, then the image convention, then the default', () => {
    assert.equal(resolveSshUser(vm({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, ssh: { user: 'ops' } })), 'ops');
    assert.equal(resolveSshUser(vm({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' } })), 'debian');
    assert.equal(resolveSshUser(vm({ name: 'web', image: { kind: 'path', ref: '/img/x.qcow2', os: 'Ubuntu' } })), 'ubuntu');
    assert.equal(resolveSshUser(vm({ name: 'web', image: { kind: 'path', ref: '/img/x.qcow2' } })), 'tend');
  });
});
