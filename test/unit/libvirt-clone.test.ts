/**
 * libvirt warm clones (issue 15 §2): the domain XML a clone is compared with its template by
 * (per-clone values masked, hardware not), the XML of a clone's save image (the template's live
 * XML with the clone's name, UUID, metadata and files), libvirt's save-image header as tend writes
 * and reads it, and which libvirt VMs are eligible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'xmlbuilder2';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import { buildDomainXml, type DomainInput } from '../../src/libvirt/domain-xml.js';
import { readMetadata } from '../../src/libvirt/metadata.js';
import { cloneSaveXml, portableDomainXml } from '../../src/libvirt/clone-xml.js';
import { SAVE_HEADER_BYTES, SAVE_MAGIC, saveImageHead, saveImageXml, writeSaveImage } from '../../src/libvirt/save-image.js';
import { argvDifference } from '../../src/qemu/saved-state.js';
import { cloneIneligible, templateKey } from '../../src/qemu/template-key.js';

function domain(name: string, dir: string, draft: Partial<VmDraft> = {}, port = 40022, seed = true): string {
  const vm = applyDefaults({ name, image: { kind: 'path', ref: '/img.qcow2' }, warm: true, ...draft } as VmDraft);
  const input: DomainInput = {
    vm,
    domainName: `tend-demo-0123abcd-${name}`,
    uuid: null,
    type: 'qemu',
    metadata: {
      project: 'demo',
      projectDir: '/p/demo',
      vm: name,
      spec: vm,
      diskImage: 'sha256-aa',
      ports: { ssh: `127.0.0.1:${port}` },
      accel: 'tcg',
    },
    paths: {
      disk: `${dir}/disk.qcow2`,
      seed: seed ? `${dir}/seed.iso` : null,
      volumes: {},
      serialSocket: `${dir}/serial.sock`,
      consoleLog: `${dir}/console.log`,
      nvram: `${dir}/efi-vars.fd`,
    },
    firmware: vm.firmware === 'bios' ? null : { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
    userNet: { backend: 'passt', forwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: port, guestPort: 22 }] },
    hostFolders: [],
    projectNet: null,
    tapMac: null,
    runAsRoot: true,
  };
  return buildDomainXml(input);
}

const lines = (x: string): string[] =>
  x
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

test('portableDomainXml: two VMs differing only in name, files and host ports are the same domain; hardware is not masked', () => {
  const a = domain('web', '/s/a/vms/web', { firmware: 'uefi' }, 40022);
  const b = domain('twin', '/s/b/vms/twin', { firmware: 'uefi' }, 41022);
  assert.notEqual(a, b);
  assert.equal(portableDomainXml(a), portableDomainXml(b));
  const withUuid = a.replace(
    '<name>tend-demo-0123abcd-web</name>',
    '<name>tend-demo-0123abcd-web</name>\n  <uuid>7fdf7912-609f-479a-8e86-d0042c092fe6</uuid>',
  );
  assert.notEqual(withUuid, a);
  assert.equal(portableDomainXml(withUuid), portableDomainXml(b), 'a UUID (libvirt gives one at the first define) is per domain');
  assert.doesNotMatch(portableDomainXml(a), /\/s\/a|web|40022/, 'no per-VM value left');
  const bigger = domain('twin', '/s/b/vms/twin', { firmware: 'uefi', memory: 2048 });
  assert.equal(
    argvDifference(lines(portableDomainXml(a)), lines(portableDomainXml(bigger))),
    '<memory unit="MiB">1024</memory> → <memory unit="MiB">2048</memory>',
  );
  const twoCpus = domain('twin', '/s/b/vms/twin', { firmware: 'uefi', cpus: 2 });
  assert.match(argvDifference(lines(portableDomainXml(a)), lines(portableDomainXml(twoCpus))) ?? '', /<vcpu>1<\/vcpu> → <vcpu>2<\/vcpu>/);
});

/** What `virsh dumpxml --migratable` gave for a running tend domain (libvirt 9.0), abridged, with a backing chain. */
const TEMPLATE_LIVE = `<domain type='qemu'>
  <name>tend-demo-0123abcd-web</name>
  <uuid>7fdf7912-609f-479a-8e86-d0042c092fe6</uuid>
  <title>tend: demo/web</title>
  <metadata>
    <tend:tend xmlns:tend="https://tend.dev/libvirt/1">{"vm":"web"}</tend:tend>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/s/a/vms/web/efi-vars.fd</nvram>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='writeback' discard='unmap'/>
      <source file='/s/a/vms/web/disk.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/img.qcow2'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/s/a/vms/web/seed.iso'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
      <alias name='virtio-disk1'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:12:34:56'/>
      <model type='virtio'/>
      <backend type='passt'/>
      <portForward proto='tcp' address='127.0.0.1'>
        <range start='40022' to='22'/>
      </portForward>
      <alias name='net0'/>
    </interface>
    <serial type='unix'>
      <source mode='bind' path='/s/a/vms/web/serial.sock'/>
      <log file='/s/a/vms/web/console.log' append='on'/>
      <target type='isa-serial' port='0'><model name='isa-serial'/></target>
      <alias name='serial0'/>
    </serial>
    <console type='unix'>
      <source mode='bind' path='/s/a/vms/web/serial.sock'/>
      <log file='/s/a/vms/web/console.log' append='on'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
</domain>
`;

const root = (xml: string): Element => create(xml).root().node as unknown as Element;
const kids = (e: Element, n: string): Element[] => [...e.children].filter((c) => c.nodeName === n) as Element[];
const one = (e: Element, path: string): Element => {
  let cur = e;
  for (const p of path.split('/')) cur = kids(cur, p)[0]!;
  assert.ok(cur, path);
  return cur;
};

test("cloneSaveXml: the template's live XML with the clone's name, UUID, metadata, files and host ports; devices as the template ran them", () => {
  const clone = domain('twin', '/s/b/vms/twin', { firmware: 'uefi' }, 41022);
  const out = root(cloneSaveXml(TEMPLATE_LIVE, clone, '11111111-2222-3333-4444-555555555555'));
  assert.equal(one(out, 'name').textContent, 'tend-demo-0123abcd-twin');
  assert.equal(one(out, 'uuid').textContent, '11111111-2222-3333-4444-555555555555');
  assert.equal(one(out, 'title').textContent, 'tend: demo/twin');
  const meta = readMetadata(cloneSaveXml(TEMPLATE_LIVE, clone, '11111111-2222-3333-4444-555555555555'));
  assert.ok(meta.ok && meta.value.vm === 'twin', "tend's metadata is the clone's");
  assert.equal(one(out, 'os/nvram').textContent, '/s/b/vms/twin/efi-vars.fd');
  assert.equal(one(out, 'os/type').getAttribute('machine'), 'pc-q35-7.2', "the machine as the template's QEMU ran it");
  const disks = kids(one(out, 'devices'), 'disk');
  assert.deepEqual(
    disks.map((d) => [one(d, 'target').getAttribute('dev'), one(d, 'source').getAttribute('file'), one(d, 'alias').getAttribute('name')]),
    [
      ['vda', '/s/b/vms/twin/disk.qcow2', 'virtio-disk0'],
      ['vdb', '/s/b/vms/twin/seed.iso', 'virtio-disk1'],
    ],
  );
  assert.equal(kids(disks[0]!, 'backingStore').length, 0, "the template's chain is not the clone's: libvirt reads it from the files");
  assert.equal(one(disks[0]!, 'address').getAttribute('bus'), '0x03', 'PCI addresses kept');
  for (const d of ['serial', 'console']) {
    assert.equal(one(out, `devices/${d}/source`).getAttribute('path'), '/s/b/vms/twin/serial.sock');
    assert.equal(one(out, `devices/${d}/log`).getAttribute('file'), '/s/b/vms/twin/console.log');
  }
  const fwd = kids(one(out, 'devices/interface'), 'portForward');
  assert.deepEqual(
    fwd.map((f) => one(f, 'range').getAttribute('start')),
    ['41022'],
  );
  assert.equal(one(out, 'devices/interface/mac').getAttribute('address'), '52:54:00:12:34:56');
  assert.doesNotMatch(
    cloneSaveXml(TEMPLATE_LIVE, clone, '11111111-2222-3333-4444-555555555555'),
    /\/s\/a\/|>web<|40022|7fdf7912/,
    'nothing of the template VM left',
  );
});

test('cloneSaveXml refuses a clone without a disk the template has', () => {
  const clone = domain('twin', '/s/b/vms/twin', {}, 41022, false);
  assert.throws(() => cloneSaveXml(TEMPLATE_LIVE, clone, 'u'), /disk vdb has no counterpart/);
});

test("save image: libvirt's header (magic, version 2, data_len, running, raw, no cookie), the stream aligned, the XML read back", () => {
  const xml = '<domain><name>x</name></domain>';
  const head = saveImageHead(xml);
  assert.equal(head.toString('latin1', 0, 16), SAVE_MAGIC);
  assert.equal(head.readUInt32LE(16), 2);
  assert.equal(head.readUInt32LE(20), head.length - SAVE_HEADER_BYTES);
  assert.equal(head.readUInt32LE(24), 1, 'was running');
  assert.equal(head.readUInt32LE(28), 0, 'not compressed');
  assert.equal(head.readUInt32LE(32), 0, 'no cookie');
  assert.equal(head.length % 4096, 0);
  assert.equal(saveImageXml(head), xml);
  assert.equal(
    saveImageXml(Buffer.from('not a save image at all, really not one of those, nope; long enough to read a header from it')),
    null,
  );
  // a head libvirt wrote: XML, then its migration cookie at cookieOffset
  const lib = Buffer.alloc(SAVE_HEADER_BYTES + 64);
  lib.write(SAVE_MAGIC, 0, 'latin1');
  lib.writeUInt32LE(2, 16);
  lib.writeUInt32LE(64, 20);
  lib.writeUInt32LE(10, 32);
  lib.write('<d>abc</d>\0<cookie/>\0', SAVE_HEADER_BYTES, 'utf8');
  assert.equal(saveImageXml(lib), '<d>abc</d>');

  const dir = mkdtempSync(join(tmpdir(), 'tend-saveimg-'));
  try {
    writeFileSync(join(dir, 'stream'), 'QEVM-stream-bytes');
    return writeSaveImage(join(dir, 'img'), xml, join(dir, 'stream')).then(() => {
      const img = readFileSync(join(dir, 'img'));
      assert.equal(saveImageXml(img), xml);
      assert.equal(img.subarray(head.length).toString(), 'QEVM-stream-bytes', 'the stream follows the padded head');
    });
  } finally {
    setTimeout(() => rmSync(dir, { recursive: true, force: true }), 1000);
  }
});

test('libvirt clones: own template keys (per connection); no volumes, host folders or project network yet', () => {
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: '/img.qcow2' }, warm: true } as VmDraft);
  const q = templateKey(vm, 'img', false);
  assert.equal(templateKey(vm, 'img', false, null), q, 'QEMU keys unchanged');
  assert.notEqual(templateKey(vm, 'img', false, 'libvirt qemu:///system'), q);
  assert.notEqual(templateKey(vm, 'img', false, 'libvirt qemu:///system'), templateKey(vm, 'img', false, 'libvirt qemu:///session'));
  assert.equal(cloneIneligible(vm, { libvirt: true }), null);
  const vol = { ...vm, volumes: [{ kind: 'named' as const, name: 'v', target: '/v', readOnly: false }] };
  assert.equal(cloneIneligible(vol), null, 'QEMU plugs volumes in');
  assert.match(cloneIneligible(vol, { libvirt: true }) ?? '', /libvirt backend a warm clone cannot have volumes/);
  assert.match(cloneIneligible(vm, { libvirt: true, projectNic: true }) ?? '', /project network/);
});
