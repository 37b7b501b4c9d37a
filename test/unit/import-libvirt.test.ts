import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importDomainXml, memoryMiB, normaliseName } from '../../src/import/libvirt.js';
import { parseXml, XmlError } from '../../src/import/xml.js';
import { importCommand, renderImport } from '../../src/cli/commands/import.js';
import { loadProject } from '../../src/load/project.js';
import { UsageError } from '../../schemas/errors.js';

function domainXml(image: string): string {
  return `<?xml version="1.0"?>
<!-- exported by virsh -->
<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>Web_Server.1</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>Skylake-Client</model></cpu>
  <devices>
    <emulator>/opt/custom/qemu-patched</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/data.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'><source file='/tmp/seed.iso'/><target dev='sda' bus='sata'/></disk>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
    <interface type='network'><source network='default'/></interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>
      <rom file='/usr/share/roms/gpu.rom'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb'>
      <source><vendor id='0x046d'/><product id='0xc52b'/></source>
    </hostdev>
    <redirdev bus='usb' type='spicevmc'/>
    <filesystem type='mount'><source dir='/srv/share'/><target dir='share'/></filesystem>
    <graphics type='spice' autoport='yes'/>
    <video><model type='qxl'/></video>
    <serial type='pty'/>
    <tpm model='tpm-crb'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-global'/>
    <qemu:arg value='kvm-pit.lost_tick_policy=discard'/>
  </qemu:commandline>
</domain>
`;
}

test('a libvirt domain maps name, memory, vcpus, machine, cpu, firmware, image, PCI devices and qemu args', () => {
  const r = importDomainXml(domainXml('/var/lib/libvirt/images/web.qcow2'));
  assert.equal(r.name, 'web-server-1');
  assert.deepEqual(r.service, {
    image: '/var/lib/libvirt/images/web.qcow2',
    image_format: 'qcow2',
    vm: {
      memory_mb: 2048,
      vcpu: 2,
      machine: 'q35',
      cpu_model: 'Skylake-Client',
      extra_args: ['-global', 'kvm-pit.lost_tick_policy=discard'],
    },
    firmware: 'uefi-secure',
    devices: [{ pci: '0000:01:00.0', rom_file: '/usr/share/roms/gpu.rom' }],
  });
});

test('every unmappable part gets a warning naming it: extra disks, bridged NICs, USB, custom emulators, ...', () => {
  const r = importDomainXml(domainXml('/img.qcow2'));
  const parts = r.warnings.map((w) => w.part);
  assert.deepEqual(parts, [
    'name',
    'devices/emulator[1]',
    'devices/disk[2]',
    'devices/disk[3]',
    'devices/interface[1]',
    'devices/interface[2]',
    'devices/hostdev[2]',
    'devices/redirdev[1]',
    'devices/filesystem[1]',
    'devices/tpm[1]',
    'qemu:commandline',
  ]);
  const by = (p: string) => r.warnings.find((w) => w.part === p)?.message ?? '';
  assert.match(by('devices/emulator[1]'), /custom emulator \/opt\/custom\/qemu-patched/);
  assert.match(by('devices/disk[2]'), /extra disk \/var\/lib\/libvirt\/images\/data\.img .*named volume/);
  assert.match(by('devices/interface[1]'), /bridged NIC on br0 .*mode: tap, bridge: br0/);
  assert.match(by('devices/hostdev[2]'), /USB host device 0x046d:0xc52b/);
  // the file carries the warnings as comments
  assert.match(r.yaml, /^# {3}devices\/interface\[1\]: bridged NIC on br0/m);
});

test("the imported tend.yaml loads with tend's own loader", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-import-'));
  const image = join(dir, 'web.qcow2');
  writeFileSync(image, '');
  writeFileSync(join(dir, 'rom.bin'), '');
  const xml = domainXml(image).replace('/usr/share/roms/gpu.rom', join(dir, 'rom.bin'));
  writeFileSync(join(dir, 'tend.yaml'), importDomainXml(xml).yaml);
  const r = await loadProject([join(dir, 'tend.yaml')], { env: process.env, cwd: dir });
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  const vm = r.project?.vms[0];
  assert.equal(vm?.name, 'web-server-1');
  assert.equal(vm?.memory, 2048);
  assert.equal(vm?.cpus, 2);
  assert.equal(vm?.firmware, 'uefi-secure');
  assert.equal(vm?.image.ref, image);
  assert.deepEqual(vm?.devices, [{ pci: '0000:01:00.0', romFile: join(dir, 'rom.bin') }]);
});

test('memory units and names', () => {
  assert.equal(memoryMiB(parseXml("<memory unit='GiB'>4</memory>")), 4096);
  assert.equal(memoryMiB(parseXml('<memory>524288</memory>')), 512);
  assert.equal(memoryMiB(parseXml("<memory unit='MB'>1000</memory>")), 953);
  assert.equal(normaliseName('My VM'), 'my-vm');
  assert.equal(normaliseName('___'), 'vm');
});

test('the XML reader reports where malformed XML breaks', () => {
  assert.throws(
    () => parseXml('<domain>\n<name>x</nam>\n</domain>'),
    (e: unknown) => e instanceof XmlError && e.line === 2,
  );
  assert.throws(() => parseXml('<domain>'), /never closed/);
  assert.equal(parseXml('<a x="1 &amp; 2"><![CDATA[<b>]]>&#65;</a>').text, '<b>A');
  assert.throws(() => importDomainXml('<network><name>default</name></network>'), /not a libvirt domain/);
});

test('tend import writes tend.yaml, refuses to overwrite without --force, and prints with -o -', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-import-cmd-'));
  writeFileSync(join(dir, 'vm.xml'), domainXml('/img.qcow2'));
  const r = await importCommand({ cwd: dir, xml: 'vm.xml' });
  assert.equal(r.file, join(dir, 'tend.yaml'));
  assert.ok(existsSync(r.file));
  assert.match(readFileSync(r.file, 'utf8'), /web-server-1:/);
  assert.match(renderImport(r), /^warning: devices\/disk\[2\]: extra disk/m);
  await assert.rejects(importCommand({ cwd: dir, xml: 'vm.xml' }), (e: unknown) => e instanceof UsageError && /--force/.test(e.message));
  await importCommand({ cwd: dir, xml: 'vm.xml', force: true });
  const printed = await importCommand({ cwd: dir, xml: 'vm.xml', output: '-' });
  assert.equal(printed.file, null);
  assert.match(renderImport(printed), /^# Imported by tend/);
  await assert.rejects(importCommand({ cwd: dir }), UsageError);
});

test('a domain name goes through virsh dumpxml (a fake virsh on PATH)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-import-virsh-'));
  const bin = join(dir, 'bin');
  const { mkdirSync, chmodSync } = await import('node:fs');
  mkdirSync(bin);
  writeFileSync(join(dir, 'dom.xml'), domainXml('/img.qcow2'));
  writeFileSync(
    join(bin, 'virsh'),
    `#!/bin/sh\n[ "$1" = dumpxml ] && [ "$2" = web ] && exec cat ${join(dir, 'dom.xml')}\necho "error: failed to get domain '$2'" >&2; exit 1\n`,
  );
  chmodSync(join(bin, 'virsh'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const r = await importCommand({ cwd: dir, domain: 'web', output: '-', env });
  assert.equal(r.name, 'web-server-1');
  await assert.rejects(importCommand({ cwd: dir, domain: 'nope', output: '-', env }), /failed to get domain 'nope'/);
});
