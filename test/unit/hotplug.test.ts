/**
 * Volumes and host folders of warm clones (issue 15 §2, src/qemu/hotplug.ts): a warm q35 VM has
 * spare PCIe root ports; a clone restores on an argv without its volumes and host folders that a
 * template made by a VM without them accepts (its RAM, shared for virtiofs, is the same RAM to the
 * guest), then gets one blockdev-add + device_add per volume and chardev-add + device_add per
 * folder, one port each, and mounts them with the seed's own snippets, checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { VmSpec } from '../../schemas/model.js';
import { buildArgv } from '../../src/qemu/argv.js';
import { argvDifference } from '../../src/qemu/saved-state.js';
import { cloneIneligible, portableArgv, templateKey } from '../../src/qemu/template-key.js';
import { HOTPLUG_PORTS, guestMountScript, hotplugCommands, hotplugPortArgs, mountsPluggedIn } from '../../src/qemu/hotplug.js';
import { hostFolderShares, withoutSharedMemory } from '../../src/qemu/volumes.js';
import { volumeBootcmd } from '../../src/seed/volumes.js';

const vmOf = (d: Partial<VmDraft>): VmSpec =>
  applyDefaults({ name: 'web', image: { kind: 'path', ref: '/img.qcow2' }, accel: 'tcg', warm: true, ...d } as VmDraft);

const mounts: VmSpec['volumes'] = [
  { kind: 'named', name: 'data', target: '/data', readOnly: false },
  { kind: 'host', source: '/srv/site', target: '/srv/site', readOnly: true },
];

function argvOf(vm: VmSpec, dir: string, port: number, mountsLater = false): string[] {
  return buildArgv({
    vm,
    accel: 'tcg',
    paths: {
      disk: `${dir}/disk.qcow2`,
      seed: `${dir}/seed.iso`,
      pidfile: `${dir}/qemu.pid`,
      qmp: `${dir}/qmp.sock`,
      serial: `${dir}/serial.sock`,
      consoleLog: `${dir}/console.log`,
      volumes: { data: `${dir}/../../volumes/data.qcow2` },
    },
    ports: [],
    sshPort: port,
    hostFolders: hostFolderShares(vm, dir, {}),
    mountsLater,
  });
}

test('a warm q35 VM has spare root ports for hot-plug; a cold or non-q35 one has none', () => {
  const ports = hotplugPortArgs(vmOf({}));
  assert.equal(ports.length, 2 * HOTPLUG_PORTS);
  assert.equal(ports[1], 'pcie-root-port,id=tend-hp0,bus=pcie.0,chassis=224,addr=0x10.0,multifunction=on');
  assert.deepEqual(hotplugPortArgs(vmOf({ warm: false })), []);
  assert.deepEqual(hotplugPortArgs(vmOf({ machine: 'pc' })), []);
  assert.ok(argvOf(vmOf({}), '/s/vms/web', 40000).includes(ports[1] as string));
});

test('volumes and host folders leave the template key out and keep a VM eligible, within the ports of q35', () => {
  const plain = vmOf({});
  const withMounts = vmOf({ volumes: mounts });
  assert.equal(templateKey(plain, 'img', false), templateKey(withMounts, 'img', false), 'the key leaves volumes out');
  assert.equal(cloneIneligible(withMounts), null);
  assert.match(cloneIneligible(vmOf({ volumes: mounts, machine: 'pc' })) ?? '', /q35 machines only \(not pc\)/);
  const many = Array.from({ length: HOTPLUG_PORTS + 1 }, (_, i) => ({
    kind: 'named' as const,
    name: `v${i}`,
    target: `/v${i}`,
    readOnly: false,
  }));
  assert.match(cloneIneligible(vmOf({ volumes: many })) ?? '', /more than 4 volumes/);
});

test("a clone's restore argv has no volume or folder device, keeps shared RAM, and fits a template made without them", () => {
  const tpl = argvOf(vmOf({ name: 't' }), '/s/projects/a/vms/t', 40001);
  const vm = vmOf({ volumes: mounts });
  const cold = argvOf(vm, '/s/projects/b/vms/web', 40002);
  const restore = argvOf(vm, '/s/projects/b/vms/web', 40002, true);
  assert.ok(
    cold.some((a) => a.startsWith('virtio-blk-pci,drive=vol-data')),
    'a cold boot has the volume',
  );
  assert.ok(
    cold.some((a) => a.startsWith('vhost-user-fs-pci')),
    'and the folder',
  );
  assert.ok(!restore.some((a) => a.includes('vol-data') || a.startsWith('vhost-user-fs-pci') || a.startsWith('socket,id=vfs')));
  assert.ok(restore.includes('memory-backend=pc.ram'), 'the RAM is shared for the folder to come');
  assert.equal(argvDifference(portableArgv(tpl), portableArgv(withoutSharedMemory(restore))), null);
  assert.ok(argvDifference(portableArgv(tpl), portableArgv(withoutSharedMemory(cold))), 'the cold argv would not fit');
  // what `stop --save` tells apart: a clone running with its mounts plugged in, not in its argv
  assert.equal(mountsPluggedIn(vm, restore), true);
  assert.equal(mountsPluggedIn(vm, cold), false);
  assert.equal(mountsPluggedIn(vmOf({ volumes: [mounts[1]!] }), argvOf(vmOf({ volumes: [mounts[1]!] }), '/s/vms/x', 1)), false);
  assert.equal(mountsPluggedIn(vmOf({}), tpl), false);
  // only tend's own shared-RAM pair is dropped
  assert.deepEqual(withoutSharedMemory(['-machine', 'memory-backend=other', '-m', '1']), ['-machine', 'memory-backend=other', '-m', '1']);
});

test('hot-plug: blockdev-add + virtio-blk-pci per volume, chardev-add + vhost-user-fs-pci per folder, one root port each', () => {
  const vm = vmOf({ volumes: [...mounts, { kind: 'named', name: 'ro', target: '/ro', readOnly: true }] });
  const shares = hostFolderShares(vm, '/s/vms/web', {});
  const cmds = hotplugCommands(vm, { data: '/s/volumes/data.qcow2', ro: '/s/volumes/ro.qcow2' }, shares);
  assert.deepEqual(
    cmds.map((c) => [c.execute, c.arguments.driver ?? c.arguments.id, c.arguments.bus ?? null]),
    [
      ['blockdev-add', 'qcow2', null],
      ['device_add', 'virtio-blk-pci', 'tend-hp0'],
      ['chardev-add', 'vfs-tend-host-0', null],
      ['device_add', 'vhost-user-fs-pci', 'tend-hp1'],
      ['blockdev-add', 'qcow2', null],
      ['device_add', 'virtio-blk-pci', 'tend-hp2'],
    ],
  );
  assert.deepEqual(cmds[0]?.arguments, {
    driver: 'qcow2',
    'node-name': 'vol-data',
    'read-only': false,
    file: { driver: 'file', filename: '/s/volumes/data.qcow2', 'read-only': false },
  });
  assert.equal(cmds[1]?.arguments.serial, 'data', 'the serial the guest finds it by, as on a cold boot');
  assert.equal((cmds[2]?.arguments.backend as { data: { addr: { data: { path: string } } } }).data.addr.data.path, shares[0]?.socket);
  assert.equal(cmds[3]?.arguments.tag, 'tend-host-0');
  assert.equal(cmds[4]?.arguments['read-only'], true, 'a :ro volume is plugged read-only');
});

test("the guest's mount script runs the seed's snippets until every target is mounted, and says which is not", () => {
  const vm = vmOf({ volumes: mounts });
  const script = guestMountScript(vm, 2);
  execFileSync('sh', ['-n', '-c', script]);
  for (const snippet of volumeBootcmd(vm)) assert.ok(script.includes(snippet), 'the bootcmd snippet as is');
  assert.match(script, /for t in '\/data' '\/srv\/site'; do mountpoint -q "\$t" \|\| ok=0; done/);
  assert.match(script, /echo "not mounted: \$t" >&2; done\nexit 1$/);
});
