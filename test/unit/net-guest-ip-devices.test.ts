/** The TAP NIC's stable MAC, guest IP discovery (parsers) and PCI passthrough host checks (fake sysfs). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults } from '../../schemas/defaults.js';
import { tapMac } from '../../src/net/mac.js';
import { parseLeases, parseNeighbours, pickGuestIp } from '../../src/net/guest-ip.js';
import { checkDevices, checkPciDevice, fullPciAddress } from '../../src/qemu/devices.js';

const img = { kind: 'catalog', ref: 'debian:12' } as const;

test('TAP NIC: a stable MAC per project and VM', () => {
  const mac = tapMac('/s/p', 'web');
  assert.match(mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.equal(tapMac('/s/p', 'web'), mac);
  assert.notEqual(tapMac('/s/p', 'db'), mac);
});

test('guest IP: the neighbour table wins, then the newest unexpired lease', () => {
  const mac = '52:54:00:aa:bb:cc';
  const neigh = [
    '10.0.0.9 dev br0 lladdr 52:54:00:aa:bb:cc FAILED',
    '10.0.0.7 dev br0 lladdr 52:54:00:AA:BB:CC REACHABLE',
    '10.0.0.8 dev br0 FAILED',
    '192.168.1.1 dev eth0 lladdr 11:22:33:44:55:66 STALE',
  ].join('\n');
  assert.equal(parseNeighbours(neigh).length, 3);
  const leases = ['100 52:54:00:aa:bb:cc 10.0.0.50 web *', '300 52:54:00:aa:bb:cc 10.0.0.51 web 01:52', 'garbage line'].join('\n');
  assert.deepEqual(
    parseLeases(leases).map((l) => l.address),
    ['10.0.0.50', '10.0.0.51'],
  );
  assert.deepEqual(pickGuestIp(mac, neigh, [leases], 50), { address: '10.0.0.7', source: 'neighbour', dev: 'br0' });
  assert.deepEqual(pickGuestIp(mac, '', [leases], 50), { address: '10.0.0.51', source: 'lease' });
  assert.deepEqual(pickGuestIp(mac, '', [leases], 200), { address: '10.0.0.51', source: 'lease' });
  assert.equal(pickGuestIp(mac, '', [leases], 400), null, 'expired leases do not count');
  assert.equal(pickGuestIp('52:54:00:00:00:01', neigh, [leases], 50), null);
});

test('PCI addresses get their domain', () => {
  assert.equal(fullPciAddress('01:00.0'), '0000:01:00.0');
  assert.equal(fullPciAddress('0000:02:00.1'), '0000:02:00.1');
});

/** A fake /sys with one GPU + its audio function in IOMMU group 7, and a device without a group. */
function fakeSys(bindAudio: string): { sys: string; dev: string } {
  const root = mkdtempSync(join(tmpdir(), 'tend-sysfs-'));
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  mkdirSync(join(sys, 'kernel/iommu_groups/7/devices'), { recursive: true });
  mkdirSync(join(sys, 'bus/pci/drivers/vfio-pci'), { recursive: true });
  mkdirSync(join(sys, 'bus/pci/drivers', bindAudio), { recursive: true });
  const add = (addr: string, driver: string | null, group: string | null): void => {
    const d = join(sys, 'bus/pci/devices', addr);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'class'), '0x030000\n');
    if (driver) symlinkSync(join(sys, 'bus/pci/drivers', driver), join(d, 'driver'));
    if (group) {
      symlinkSync(join(sys, 'kernel/iommu_groups', group), join(d, 'iommu_group'));
      symlinkSync(d, join(sys, 'kernel/iommu_groups', group, 'devices', addr));
    }
  };
  add('0000:01:00.0', 'vfio-pci', '7');
  add('0000:01:00.1', bindAudio, '7');
  add('0000:03:00.0', null, null);
  mkdirSync(join(dev, 'vfio'), { recursive: true });
  writeFileSync(join(dev, 'vfio', '7'), '');
  return { sys, dev };
}

test('doctor device checks: IOMMU group, every group member on vfio-pci, /dev/vfio node', async () => {
  const good = fakeSys('vfio-pci');
  const ok = await checkPciDevice({ pci: '01:00.0', romFile: null }, { sysRoot: good.sys, devRoot: good.dev });
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.ok, true);
  assert.equal(ok.group, '7');
  assert.deepEqual(
    ok.members.map((m) => [m.pci, m.driver]),
    [
      ['0000:01:00.0', 'vfio-pci'],
      ['0000:01:00.1', 'vfio-pci'],
    ],
  );

  const bad = fakeSys('snd_hda_intel');
  const r = await checkPciDevice({ pci: '01:00.0', romFile: '/nonexistent.rom' }, { sysRoot: bad.sys, devRoot: bad.dev });
  assert.equal(r.ok, false);
  assert.match(r.problems[0], /0000:01:00\.1 \(IOMMU group 7, same group as 0000:01:00\.0\) is bound to snd_hda_intel, not vfio-pci/);
  assert.match(r.problems[1], /ROM file \/nonexistent\.rom is not readable/);

  const [nogroup, missing] = await checkDevices(
    [
      applyDefaults({
        name: 'a',
        image: img,
        devices: [
          { pci: '03:00.0', romFile: null },
          { pci: '09:00.0', romFile: null },
        ],
      }),
    ],
    { sysRoot: bad.sys, devRoot: bad.dev },
  );
  assert.match(nogroup.problems[0], /no IOMMU group: enable VT-d/);
  assert.match(missing.problems[0], /no PCI device 0000:09:00\.0/);
});
