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
      video: 'qxl',
      graphics: 'spice',
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
    'currentMemory',
    'devices/emulator[1]',
    'devices/disk[2]',
    'devices/disk[3]',
    'devices/interface[1]/mac',
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

const NAT_HOST_CPU = `<domain type='kvm'>
  <name>db</name>
  <memory unit='MiB'>1024</memory>
  <vcpu placement='static' cpuset='0-1'>2</vcpu>
  <memoryBacking><hugepages/></memoryBacking>
  <cputune><vcpupin vcpu='0' cpuset='0'/></cputune>
  <os firmware='efi'><type arch='x86_64' machine='pc-i440fx-8.0'>hvm</type><nvram>/var/lib/libvirt/qemu/nvram/db_VARS.fd</nvram></os>
  <features><acpi/><apic/></features>
  <cpu mode='host-passthrough' check='none'><topology sockets='1' cores='2' threads='1'/><feature policy='disable' name='vmx'/></cpu>
  <clock offset='utc'/>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/db.raw'/><target dev='vda'/></disk>
    <interface type='network'><mac address='52:54:00:12:34:56'/><source network='default'/><model type='virtio'/></interface>
    <graphics type='vnc' port='5901' listen='0.0.0.0'/>
    <video><model type='bochs'/></video>
    <sound model='ich9'/>
    <watchdog model='i6300esb'/>
    <console type='pty'/>
  </devices>
</domain>`;

test('a NAT network NIC becomes user-mode networking, host-passthrough becomes cpu_model: host, and each is reported', () => {
  const r = importDomainXml(NAT_HOST_CPU);
  assert.deepEqual(r.service, {
    image: '/img/db.raw',
    image_format: 'raw',
    vm: { memory_mb: 1024, vcpu: 2, machine: 'pc', cpu_model: 'host', graphics: 'vnc' },
    firmware: 'uefi',
  });
  const by = (p: string) => r.warnings.find((w) => w.part === p)?.message ?? '';
  assert.deepEqual(
    r.warnings.map((w) => w.part),
    [
      'vcpu',
      'memoryBacking',
      'cputune',
      'os/nvram',
      'cpu/topology',
      'cpu/feature',
      'devices/interface[1]/mac',
      'devices/interface[1]',
      'devices/graphics[1]',
      'devices/video[1]',
      'devices/sound[1]',
      'devices/watchdog[1]',
    ],
  );
  assert.match(by('devices/interface[1]'), /libvirt network "default" \(NAT by libvirt\) became tend's user-mode networking .*ports:/);
  assert.match(by('devices/interface[1]/mac'), /52:54:00:12:34:56 is not kept/);
  assert.match(by('devices/graphics[1]'), /vnc display on 0\.0\.0\.0 port 5901 became vm.graphics: vnc on 127\.0\.0\.1/);
  assert.match(by('devices/video[1]'), /video model bochs .*default \(vga\)/);
  assert.match(by('cpu/feature'), /disable vmx/);
  assert.match(by('vcpu'), /cpuset 0-1/);
  assert.match(r.yaml, /cpu_model: host/);
  assert.match(r.yaml, /^# {3}devices\/interface\[1\]: libvirt network "default"/m);
});

test('cpu host-model maps to host with a warning; maximum to max', () => {
  const dom = (cpu: string) =>
    `<domain><name>x</name><memory unit='MiB'>512</memory>${cpu}<devices><disk device='disk'><source file='/x.qcow2'/></disk></devices></domain>`;
  const hm = importDomainXml(dom("<cpu mode='host-model'/>"));
  assert.equal(hm.service.vm.cpu_model, 'host');
  assert.match(hm.warnings.find((w) => w.part === 'cpu')?.message ?? '', /host-model became cpu_model: host/);
  assert.equal(importDomainXml(dom("<cpu mode='maximum'/>")).service.vm.cpu_model, 'max');
  assert.deepEqual(importDomainXml(dom("<cpu mode='host-passthrough'/>")).warnings, []);
});

test('several domains import into one file, a service each, clashing names made unique and warnings naming their domain', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-import-many-'));
  const bin = join(dir, 'bin');
  const { mkdirSync, chmodSync } = await import('node:fs');
  mkdirSync(bin);
  writeFileSync(join(dir, 'web.xml'), domainXml(join(dir, 'web.qcow2')));
  writeFileSync(join(dir, 'db.xml'), NAT_HOST_CPU.replace('/img/db.raw', join(dir, 'db.raw')));
  writeFileSync(join(dir, 'web2.xml'), NAT_HOST_CPU.replace('<name>db</name>', '<name>Web-Server-1</name>'));
  writeFileSync(
    join(bin, 'virsh'),
    `#!/bin/sh
[ "$1" = -c ] && shift 2
case "$1 $2" in
  "list --all") printf 'Web_Server.1\\ndb\\n\\n' ;;
  "dumpxml Web_Server.1") cat ${join(dir, 'web.xml')} ;;
  "dumpxml db") cat ${join(dir, 'db.xml')} ;;
  "dumpxml Web-Server-1") cat ${join(dir, 'web2.xml')} ;;
  *) echo "error: unexpected $*" >&2; exit 1 ;;
esac
`,
  );
  chmodSync(join(bin, 'virsh'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const r = await importCommand({ cwd: dir, all: true, output: '-', env });
  assert.deepEqual(r.services, [
    { name: 'web-server-1', domain: 'Web_Server.1' },
    { name: 'db', domain: 'db' },
  ]);
  assert.ok(r.warnings.some((w) => w.domain === 'db' && w.part === 'devices/interface[1]'));
  assert.match(r.yaml, /^# {3}db: devices\/interface\[1\]: libvirt network/m);
  const two = await importCommand({ cwd: dir, domains: ['Web_Server.1', 'Web-Server-1'], output: '-', env });
  assert.deepEqual(
    two.services.map((s) => s.name),
    ['web-server-1', 'web-server-1-2'],
  );
  await assert.rejects(importCommand({ cwd: dir, all: true, domains: ['db'], env }), (e: unknown) => e instanceof UsageError);
});
