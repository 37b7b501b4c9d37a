/**
 * The verbs holos and vmctl users type (issue 11 §2-§3), through the built CLI: pull, images,
 * verify [--all], devices, version (holos); list, log, reload (vmctl).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, project, tend } from './cli-harness.js';

before(() => ensureBuilt());

test('pull, images, verify and verify --all work on the image store; a damaged image fails verify', () => {
  const p = project({});
  const disk = join(p.cwd, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
  const url = pathToFileURL(disk).toString();
  const pull = tend(['pull', url], p);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, /format: qcow2/);

  const images = tend(['images'], p);
  assert.equal(images.code, 0, images.stderr);
  assert.match(images.stdout, /^NAME\s+ALIASES\s+OS\s+USER\s+FIRMWARE\s+VERIFIED BY\s+STORED/);
  assert.match(images.stdout, /\nalpine:3\.23\s+-\s+alpine\s+alpine\s+uefi\s+sha512 \(pinned\)\s+no/);
  assert.match(images.stdout, /\ndebian:12\s+debian:bookworm,debian\s+debian\s+debian\s+bios\s+SHA512SUMS \(publisher's file\)\s+no/);

  const one = tend(['verify', url], p);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /: ok \(sha256:[0-9a-f]{64}\)/);
  const all = tend(['verify', '--all', '--json'], p);
  assert.equal(all.code, 0, all.stderr);
  const rows = (JSON.parse(all.stdout) as { images: { ref: string; ok: boolean }[] }).images;
  assert.deepEqual(
    rows.map((r) => [r.ref, r.ok]),
    [[url, true]],
  );
  // damage the stored copy: verify --all says so and fails
  const stored = (JSON.parse(tend(['image', 'inspect', url, '--json'], p).stdout) as { image: { path: string } }).image.path;
  appendFileSync(stored, 'x');
  const bad = tend(['verify', '--all'], p);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /MISMATCH/);
  assert.equal(tend(['verify'], p).code, 2, 'an image name or --all is required');
});

test('devices lists PCI devices from sysfs (kind, driver, IOMMU group); --gpu keeps display controllers', () => {
  const sys = mkdtempSync(join(tmpdir(), 'tend-sysfs-'));
  const dev = (addr: string, cls: string, driver: string | null, group: string) => {
    const d = join(sys, 'bus', 'pci', 'devices', addr);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'class'), `${cls}\n`);
    writeFileSync(join(d, 'vendor'), '0x10de\n');
    writeFileSync(join(d, 'device'), '0x2204\n');
    mkdirSync(join(sys, 'kernel', 'iommu_groups', group), { recursive: true });
    symlinkSync(join(sys, 'kernel', 'iommu_groups', group), join(d, 'iommu_group'));
    if (driver) {
      mkdirSync(join(sys, 'bus', 'pci', 'drivers', driver), { recursive: true });
      symlinkSync(join(sys, 'bus', 'pci', 'drivers', driver), join(d, 'driver'));
    }
  };
  dev('0000:01:00.0', '0x030000', 'vfio-pci', '12');
  dev('0000:01:00.1', '0x040300', null, '12');
  dev('0000:02:00.0', '0x020000', 'e1000e', '13');
  const p = project({});
  const all = tend(['devices'], p, { TEND_SYSFS: sys });
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /0000:01:00\.0\s+display\s+0x10de:0x2204\s+vfio-pci\s+12/);
  assert.match(all.stdout, /0000:01:00\.1\s+multimedia\s+0x10de:0x2204\s+-\s+12/);
  assert.match(all.stdout, /0000:02:00\.0\s+network/);
  const gpu = JSON.parse(tend(['devices', '--gpu', '--json'], p, { TEND_SYSFS: sys }).stdout) as { devices: { address: string }[] };
  assert.deepEqual(
    gpu.devices.map((d) => d.address),
    ['0000:01:00.0'],
  );
});

test('version; vmctl names: list (ps), log (logs), reload (up)', () => {
  const p = project({ 'tend.yaml': 'name: demo\nservices:\n  web:\n    image: debian:12\n' });
  const v = tend(['version'], p);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^tend \d+\.\d+\.\d+\nnode \d+/);
  const list = tend(['list'], p);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+STATE/);
  assert.match(list.stdout, /\nweb\s+not-created\s/);
  const log = tend(['log', 'web'], p);
  assert.equal(log.code, 0, log.stderr);
  // holos: `exec NAME` alone opens a shell (tend ssh), `-u USER` picks the login user
  const shell = tend(['exec', 'web'], p);
  assert.equal(shell.code, 125);
  assert.doesNotMatch(shell.stderr, /nothing to run/);
  assert.match(shell.stderr, /web is not running/);
  assert.match(tend(['exec', '--help'], p).stdout, /-u, --user <user>/);
  const help = tend(['reload', '--help'], p);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: tend reload \[options\]/);
  assert.match(help.stdout, /--recreate/);
});
