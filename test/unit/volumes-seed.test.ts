import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults } from '../../schemas/defaults.js';
import { hostFolderTag, namedVolumeScript, volumeBootcmd, volumeDevice, volumeSerial, shq } from '../../src/seed/volumes.js';

const vm = applyDefaults({
  name: 'db',
  image: { kind: 'catalog', ref: 'debian:12' },
  volumes: [
    { kind: 'named', name: 'pgdata', target: '/var/lib/postgresql', readOnly: false },
    { kind: 'host', source: '/srv/site', target: '/srv/site', readOnly: true },
    { kind: 'named', name: 'seeddata', target: "/opt/it's data", readOnly: true },
  ],
});

test('one bootcmd entry per mount, in spec order: named volumes by disk serial, host folders by virtiofs tag', () => {
  const cmds = volumeBootcmd(vm);
  assert.equal(cmds.length, 3);
  assert.match(cmds[0], /\/dev\/disk\/by-id\/virtio-pgdata/);
  assert.match(cmds[0], /mkfs\.ext4 -q -L 'pgdata'/);
  assert.match(cmds[1], /mount -t virtiofs -o ro 'tend-host-0'/);
  assert.equal(hostFolderTag(0), 'tend-host-0');
  // a read-only volume is never formatted and is mounted read-only
  assert.doesNotMatch(cmds[2], /mkfs/);
  assert.match(cmds[2], /mount -o ro /);
  assert.deepEqual(volumeBootcmd(applyDefaults({ name: 'x', image: { kind: 'catalog', ref: 'debian:12' } })), []);
});

test('long volume names are cut to the 20-byte virtio serial', () => {
  assert.equal(volumeSerial('a-very-long-volume-name-indeed'), 'a-very-long-volume-n');
  assert.equal(volumeDevice('data'), '/dev/disk/by-id/virtio-data');
});

test('shq quotes anything for sh', () => {
  const out = execFileSync('sh', ['-c', `printf %s ${shq('it\'s $HOME `x` "q"')}`], { encoding: 'utf8' });
  assert.equal(out, 'it\'s $HOME `x` "q"');
});

/**
 * Run the rendered snippet with fake blkid/mkfs/mount/mountpoint/udevadm on PATH: proves the
 * format-once logic a user relies on (a disk with a filesystem is never formatted again).
 */
function runScript(script: string, blkidExit: number): { log: string; target: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tend-volseed-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const log = join(dir, 'log');
  writeFileSync(log, '');
  const fake = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  fake('blkid', `echo "blkid $*" >> ${log}; exit ${blkidExit}`);
  fake('mkfs.ext4', `echo "mkfs $*" >> ${log}`);
  fake('mount', `echo "mount $*" >> ${log}`);
  fake('mountpoint', 'exit 1');
  fake('udevadm', 'exit 0');
  const dev = join(dir, 'dev');
  writeFileSync(dev, '');
  const target = join(dir, 'mnt', 'data');
  const patched = script.replace(/^ {2}dev='[^']*'; t='[^']*'/m, `  dev='${dev}'; t='${target}'`);
  const r = spawnSync('sh', ['-c', patched], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { log: readFileSync(log, 'utf8'), target };
}

test('an empty volume (blkid: nothing found) is formatted, then mounted read-write', () => {
  const { log } = runScript(namedVolumeScript({ name: 'data', target: '/data', readOnly: false }), 2);
  assert.match(log, /^mkfs -q -L data /m);
  assert.match(log, /^mount \S+dev \S+mnt\/data$/m);
});

test('a volume that already has a filesystem is never formatted again', () => {
  const { log } = runScript(namedVolumeScript({ name: 'data', target: '/data', readOnly: false }), 0);
  assert.doesNotMatch(log, /mkfs/);
  assert.match(log, /^mount /m);
});

test('a blkid failure other than "nothing found" leaves the disk alone', () => {
  const { log } = runScript(namedVolumeScript({ name: 'data', target: '/data', readOnly: false }), 4);
  assert.doesNotMatch(log, /mkfs/);
});

test(':ro mounts read-only and never formats', () => {
  const { log } = runScript(namedVolumeScript({ name: 'data', target: '/data', readOnly: true }), 0);
  assert.match(log, /^mount -o ro /m);
  const empty = runScript(namedVolumeScript({ name: 'data', target: '/data', readOnly: true }), 2);
  assert.doesNotMatch(empty.log, /mkfs|mount/);
});

test('every rendered snippet is valid POSIX sh (dash -n), as cloud-init runs bootcmd with /bin/sh', async () => {
  const { projectNetBootcmd } = await import('../../src/seed/network-config.js');
  const { projectNetMember } = await import('../../src/net/project-net.js');
  const p = {
    name: 'p',
    dir: '/p',
    files: [],
    volumes: {},
    vms: [vm, applyDefaults({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' } })],
  };
  const net = projectNetMember(p, '/s/p', 'db', { db: 10, web: 11 });
  assert.ok(net);
  for (const s of [...volumeBootcmd(vm), projectNetBootcmd(net)]) {
    const r = spawnSync('dash', ['-n', '-c', s], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${s}\n${r.stderr}`);
  }
});
