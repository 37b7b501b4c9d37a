/**
 * Warm clones on TAP (issue 15 §2, docs/decisions.md "Clones on TAP"): which TAP VMs are eligible
 * and have the management NIC; their argv (TAP NIC with the VM's MAC, the isolated management NIC
 * with the SSH forward); what portableArgv masks (the TAP NIC's MAC, bridge and TAP device) and
 * what it does not; the seed's network-config; the identity step's TAP part, run on copies of the
 * files Debian 12's cloud-init writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { applyDefaults } from '../../schemas/defaults.js';
import type { VmSpec } from '../../schemas/model.js';
import { buildArgv } from '../../src/qemu/argv.js';
import { cloneIneligible, hasTapMgmt, nicMac, portableArgv, templateKey } from '../../src/qemu/template-key.js';
import { argvDifference, withoutHostForwards } from '../../src/qemu/saved-state.js';
import { forwardsOf } from '../../src/qemu/ports.js';
import { identityScript, tapNicScript, tapRenewScript } from '../../src/qemu/clone.js';
import { seedFiles } from '../../src/seed/seed.js';
import { tapMac } from '../../src/net/mac.js';
import { TAP_MGMT_ADDRESS, TAP_MGMT_MAC } from '../../src/net/tap-mgmt.js';

const tapVm = (name: string, o: Partial<VmSpec> = {}): VmSpec =>
  applyDefaults({
    name,
    image: { kind: 'catalog', ref: 'debian:12' },
    network: { mode: 'tap', bridge: 'br0' },
    cloudInit: { hostname: name },
    warm: true,
    ...o,
  } as Parameters<typeof applyDefaults>[0]);

const argvOf = (vm: VmSpec, projDir: string, port: number) =>
  buildArgv({
    vm,
    accel: 'tcg',
    paths: {
      disk: `${projDir}/vms/${vm.name}/disk.qcow2`,
      seed: `${projDir}/vms/${vm.name}/seed.iso`,
      pidfile: `${projDir}/vms/${vm.name}/qemu.pid`,
      qmp: `${projDir}/vms/${vm.name}/qmp.sock`,
      serial: `${projDir}/vms/${vm.name}/serial.sock`,
      consoleLog: `${projDir}/vms/${vm.name}/console.log`,
      volumes: {},
    },
    ports: [],
    sshPort: port,
    tapMac: tapMac(projDir, vm.name),
    tapMgmt: hasTapMgmt(vm),
  });

test('TAP eligibility: a warm TAP VM with cloud-init has the management NIC; without cloud-init or with its own network-config none', () => {
  const a = tapVm('a');
  assert.equal(cloneIneligible(a), null);
  assert.equal(hasTapMgmt(a), true);
  assert.equal(hasTapMgmt({ ...a, warm: false }), false, 'a VM that is not warm is unchanged');
  assert.equal(hasTapMgmt({ ...a, network: { mode: 'user', bridge: null } }), false, 'user networking needs none');
  const noCi = { ...a, cloudInit: null };
  assert.match(cloneIneligible(noCi) ?? '', /without cloud-init/);
  assert.equal(hasTapMgmt(noCi), false);
  const ownNet = { ...a, cloudInit: { ...a.cloudInit!, networkConfig: { version: 2 } } };
  assert.match(cloneIneligible(ownNet) ?? '', /network-config/);
  assert.equal(hasTapMgmt(ownNet), false);
  assert.equal(cloneIneligible({ ...a, network: { mode: 'tap', bridge: null } }), null, 'a TAP device without a bridge');
});

test("a warm TAP VM's argv: its TAP NIC with its own MAC, then the isolated management NIC with the SSH forward", () => {
  const a = tapVm('a');
  const argv = argvOf(a, '/s/projects/p', 40011);
  const mac = tapMac('/s/projects/p', 'a');
  const i = argv.indexOf('bridge,id=n0,br=br0');
  assert.ok(i > 0);
  assert.deepEqual(argv.slice(i - 1, i + 7), [
    '-netdev',
    'bridge,id=n0,br=br0',
    '-device',
    `virtio-net-pci,netdev=n0,mac=${mac}`,
    '-netdev',
    'user,id=tm0,restrict=on,ipv6=off,hostfwd=tcp:127.0.0.1:40011-:22',
    '-device',
    `virtio-net-pci,netdev=tm0,mac=${TAP_MGMT_MAC}`,
  ]);
  assert.equal(forwardsOf(argv).ssh, '127.0.0.1:40011', 'the forward is recorded as the SSH port');
  assert.equal(nicMac(argv, 'n0'), mac, "the template's TAP MAC is read back from its argv");
  const cold = argvOf({ ...a, warm: false }, '/s/projects/p', 0);
  assert.ok(!cold.some((x) => x.includes('tm0')), 'a TAP VM that is not warm has no management NIC');
});

test('portableArgv on TAP: the MAC, the bridge and the SSH port may differ; the management NIC, memory and the other MACs may not', () => {
  const a = tapVm('a');
  const ta = argvOf(a, '/s/projects/p', 40011);
  const tb = argvOf(tapVm('b'), '/s/projects/q', 40022);
  assert.notEqual(nicMac(ta, 'n0'), nicMac(tb, 'n0'));
  assert.equal(argvDifference(portableArgv(ta), portableArgv(tb)), null, 'another VM, another project');
  assert.notEqual(argvDifference(withoutHostForwards(ta), withoutHostForwards(tb)), null, 'without the mask, the MAC differs');
  const otherBridge = argvOf(tapVm('b', { network: { mode: 'tap', bridge: 'br7' } }), '/s/projects/q', 40022);
  assert.equal(argvDifference(portableArgv(ta), portableArgv(otherBridge)), null, 'the bridge is host side only');
  assert.ok(argvDifference(portableArgv(ta), portableArgv(argvOf({ ...a, memory: 2048 }, '/s/projects/p', 40011))));
  const mgmtMac = tb.map((x) => x.replace(`mac=${TAP_MGMT_MAC}`, 'mac=52:54:00:74:6d:02'));
  assert.ok(argvDifference(portableArgv(ta), portableArgv(mgmtMac)), "the management NIC's MAC is not masked");
  // the key: TAP templates are their own; a TAP template serves another VM of the same settings
  assert.equal(templateKey(a, 'img', false), templateKey(tapVm('b'), 'img', false), 'hostname and name are not in the key');
  assert.notEqual(templateKey(a, 'img', false), templateKey({ ...a, network: { mode: 'user', bridge: null } }, 'img', false));
});

test("a warm TAP VM's seed: DHCP on the TAP NIC by its MAC, the management NIC's static address without a gateway", () => {
  const a = tapVm('a');
  const mac = tapMac('/s/projects/p', 'a');
  const files = seedFiles(a, { instanceId: 'i-1', publicKey: 'ssh-ed25519 AAAA x', user: 'tend', tapMgmtMac: mac });
  assert.deepEqual(parse(files['network-config']!), {
    version: 2,
    ethernets: {
      tap0: { match: { macaddress: mac }, dhcp4: true },
      mgmt0: { match: { macaddress: TAP_MGMT_MAC }, dhcp4: false, addresses: [TAP_MGMT_ADDRESS] },
    },
  });
  assert.equal(seedFiles(a, { instanceId: 'i-1', publicKey: 'k', user: 'tend' })['network-config'], undefined);
});

test("the identity script on TAP: the template's DHCP client stopped without a release, its leases gone, the NIC and files get the VM's MAC", () => {
  const tmac = '52:54:00:aa:bb:01';
  const cmac = '52:54:00:cc:dd:02';
  const base = {
    hostname: 'b',
    machineId: '0123456789abcdef0123456789abcdef',
    seedHex: '00',
    hostKeyB64: 'AA==',
    hostKeyPub: 'ssh-ed25519 AAAA root@b',
    instanceId: 'i-1',
    user: 'tend',
    loginSwap: null,
  };
  const script = identityScript({ ...base, tap: { templateMac: tmac, mac: cmac } });
  execFileSync('sh', ['-n', '-c', script]);
  execFileSync('sh', ['-n', '-c', tapRenewScript(cmac)]);
  assert.match(script, /ip link set dev "\$tdev" address "\$cmac"/);
  assert.match(script, /ip -4 addr flush dev "\$tdev"/);
  assert.match(script, /rm -f \/var\/lib\/dhcp\/dhclient\*\.leases/, 'the leases and the DUID they hold are gone');
  assert.doesNotMatch(script, /dhclient -r|ifdown/, "no release: the template's VM may hold that lease");
  assert.doesNotMatch(identityScript(base), /tmac=/, 'no TAP, no change to it');

  // run on copies of Debian 12's files and a fake process table: the DHCP client of the TAP NIC
  // is stopped and its command line kept for the renew; the MAC replaced in the files
  const dir = mkdtempSync(join(tmpdir(), 'tend-tapfiles-'));
  try {
    const eni = join(dir, '50-cloud-init');
    const udev = join(dir, '70-persistent-net.rules');
    const eniText =
      'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n\nauto eth1\niface eth1 inet static\n    address 10.0.2.15/24\n';
    writeFileSync(eni, eniText);
    writeFileSync(
      udev,
      `SUBSYSTEM=="net", ATTR{address}=="${tmac.toUpperCase()}", NAME="eth0"\nSUBSYSTEM=="net", ATTR{address}=="${TAP_MGMT_MAC}", NAME="eth1"\n`,
    );
    const body = tapNicScript(tmac, cmac).join('\n');
    const loop = /^for f in \/etc\/network\/interfaces .*?^done$/ms.exec(body)?.[0];
    assert.ok(loop, 'the script rewrites the network files');
    const vars = /^tmac=.*$/m.exec(body)![0];
    execFileSync('sh', ['-c', `${vars}\n${loop.replace(/^for f in [^;]*;/, `for f in ${eni} ${udev};`)}`]);
    assert.equal(readFileSync(eni, 'utf8'), eniText, 'DHCP: no address to replace');
    assert.equal(
      readFileSync(udev, 'utf8'),
      `SUBSYSTEM=="net", ATTR{address}=="${cmac}", NAME="eth0"\nSUBSYSTEM=="net", ATTR{address}=="${TAP_MGMT_MAC}", NAME="eth1"\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
