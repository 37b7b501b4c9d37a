import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults } from '../../schemas/defaults.js';
import { hostFolderArgs, hostFolderShares, startVirtiofsd, virtiofsdArgv } from '../../src/qemu/volumes.js';
import { BackendError } from '../../schemas/errors.js';
import { UNIX_SOCKET_PATH_MAX } from '../../src/state/paths.js';

const vm = applyDefaults({
  name: 'web',
  image: { kind: 'catalog', ref: 'debian:12' },
  memory: 768,
  volumes: [
    { kind: 'named', name: 'data', target: '/data', readOnly: false },
    { kind: 'host', source: '/srv/site', target: '/srv/site', readOnly: true },
    { kind: 'host', source: '/srv/up', target: '/up', readOnly: false },
  ],
});

test('each host folder gets a tag and a short socket; QEMU gets shared memory and one vhost-user-fs each', () => {
  const shares = hostFolderShares(vm, `/very/${'long/'.repeat(30)}state/vms/web`, {});
  assert.deepEqual(
    shares.map((s) => [s.tag, s.source, s.readOnly]),
    [
      ['tend-host-0', '/srv/site', true],
      ['tend-host-1', '/srv/up', false],
    ],
  );
  for (const s of shares) assert.ok(Buffer.byteLength(s.socket) <= UNIX_SOCKET_PATH_MAX);
  assert.notEqual(shares[0].socket, shares[1].socket);
  const argv = hostFolderArgs(vm, shares);
  // the machine's RAM itself, under QEMU's default RAM id (a warm template's memory restores into it)
  assert.deepEqual(argv.slice(0, 4), ['-object', 'memory-backend-memfd,id=pc.ram,size=768M,share=on', '-machine', 'memory-backend=pc.ram']);
  assert.ok(argv.includes('vhost-user-fs-pci,chardev=vfs1,tag=tend-host-1'));
  assert.deepEqual(hostFolderArgs(applyDefaults({ name: 'x', image: { kind: 'catalog', ref: 'debian:12' } }), []), []);
});

test('virtiofsd argv: the Rust one is read-only for :ro and unprivileged; the C one takes -o source', () => {
  const share = { tag: 't', source: '/srv/site', readOnly: true, socket: '/run/x.vfs' };
  assert.deepEqual(virtiofsdArgv(share, true), [
    '--socket-path=/run/x.vfs',
    '--shared-dir=/srv/site',
    '--cache=auto',
    '--sandbox=none',
    '--readonly',
  ]);
  assert.deepEqual(virtiofsdArgv(share, false), ['--socket-path=/run/x.vfs', '-o', 'source=/srv/site', '-o', 'cache=auto']);
});

test('a missing host folder fails the start with a plain message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-vfs-'));
  const share = { tag: 't', source: join(dir, 'nope'), readOnly: false, socket: join(dir, 's.vfs') };
  await assert.rejects(
    startVirtiofsd('web', [share], { logPath: join(dir, 'log'), env: { ...process.env, TEND_VIRTIOFSD: '/bin/true' } }),
    (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.equal(e.reason, 'HostFolderMissing');
      return true;
    },
  );
});

test('a virtiofsd that exits without a socket is reported with its log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-vfs-'));
  const share = { tag: 't', source: dir, readOnly: false, socket: join(dir, 's.vfs') };
  await assert.rejects(
    startVirtiofsd('web', [share], { logPath: join(dir, 'log'), env: { ...process.env, TEND_VIRTIOFSD: '/bin/false' } }),
    (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.equal(e.reason, 'VirtiofsdFailed');
      assert.match(e.message, /exited/);
      return true;
    },
  );
});

test('named volume disks sit on high PCI slots so the boot disk stays first in the BIOS boot order', async () => {
  const { volumeDeviceArg, volumePciAddr } = await import('../../src/qemu/volumes.js');
  assert.equal(volumeDeviceArg(vm, 'data'), 'virtio-blk-pci,drive=vol-data,serial=data,addr=0x1e');
  const two = applyDefaults({
    name: 'db',
    image: { kind: 'catalog', ref: 'debian:12' },
    volumes: [
      { kind: 'named', name: 'a', target: '/a', readOnly: false },
      { kind: 'named', name: 'a-very-long-volume-name-indeed', target: '/b', readOnly: true },
    ],
  });
  assert.equal(
    volumeDeviceArg(two, 'a-very-long-volume-name-indeed'),
    'virtio-blk-pci,drive=vol-a-very-long-volume-name-indeed,serial=a-very-long-volume-n,addr=0x1d',
  );
  assert.throws(() => volumePciAddr(14), /at most 14/);
});
