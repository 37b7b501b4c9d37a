import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from 'xmlbuilder2';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import { buildDomainXml, QEMU_NS, SLOT, type DomainInput } from '../../src/libvirt/domain-xml.js';
import { readMetadata, specDigest, TEND_NS } from '../../src/libvirt/metadata.js';
import { BackendError } from '../../schemas/errors.js';
import { hardwareXml, xmlDifference } from '../../src/libvirt/managed-save.js';

function input(draft: Partial<VmDraft> = {}, extra: Partial<DomainInput> = {}): DomainInput {
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: '/img.qcow2' }, ...draft } as VmDraft);
  return {
    vm,
    domainName: 'tend-demo-0123abcd-web',
    type: 'qemu',
    metadata: {
      project: 'demo',
      projectDir: '/p/demo',
      vm: 'web',
      spec: vm,
      diskImage: 'sha256-aa',
      ports: { ssh: '127.0.0.1:40022' },
      accel: 'tcg',
    },
    paths: {
      disk: '/s/vms/web/disk.qcow2',
      seed: '/s/vms/web/seed.iso',
      volumes: { data: '/s/volumes/data.qcow2' },
      serialSocket: '/s/vms/web/serial.sock',
      consoleLog: '/s/vms/web/console.log',
      nvram: '/s/vms/web/efi-vars.fd',
    },
    firmware: null,
    userNet: { backend: 'slirp', forwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 40022, guestPort: 22 }] },
    hostFolders: [],
    projectNet: null,
    tapMac: null,
    runAsRoot: false,
    ...extra,
  };
}

/** Parse the XML back (the library, not a regexp) and return the <domain> element. */
function parse(xml: string): Element {
  return create(xml).root().node as unknown as Element;
}
const kids = (el: Element, name: string): Element[] => [...el.children].filter((c) => c.nodeName === name);
const one = (el: Element, path: string): Element => {
  let cur = el;
  for (const p of path.split('/')) {
    const k = kids(cur, p);
    assert.equal(k.length, 1, `exactly one <${p}> under <${cur.nodeName}>`);
    cur = k[0];
  }
  return cur;
};

test('resources, machine, TCG cpu, boot disk first with boot order 1, seed read-only, serial with a log', () => {
  const d = parse(buildDomainXml(input({ cpus: 2, memory: 2048 })));
  assert.equal(d.getAttribute('type'), 'qemu');
  assert.equal(one(d, 'name').textContent, 'tend-demo-0123abcd-web');
  assert.equal(one(d, 'memory').textContent, '2048');
  assert.equal(one(d, 'memory').getAttribute('unit'), 'MiB');
  assert.equal(one(d, 'vcpu').textContent, '2');
  assert.equal(one(d, 'os/type').getAttribute('machine'), 'q35');
  assert.equal(one(d, 'cpu').getAttribute('mode'), 'maximum');
  assert.equal(one(d, 'on_crash').textContent, 'destroy');
  const disks = kids(one(d, 'devices'), 'disk');
  assert.deepEqual(
    disks.map((x) => one(x, 'source').getAttribute('file')),
    ['/s/vms/web/disk.qcow2', '/s/vms/web/seed.iso'],
  );
  assert.equal(one(disks[0], 'boot').getAttribute('order'), '1');
  assert.equal(one(disks[0], 'driver').getAttribute('type'), 'qcow2');
  assert.equal(kids(disks[1], 'readonly').length, 1);
  assert.equal(one(disks[1], 'driver').getAttribute('type'), 'raw');
  const serial = one(d, 'devices/serial');
  assert.equal(serial.getAttribute('type'), 'unix');
  assert.equal(one(serial, 'source').getAttribute('path'), '/s/vms/web/serial.sock');
  assert.equal(one(serial, 'log').getAttribute('file'), '/s/vms/web/console.log');
  assert.equal(one(d, 'devices/video/model').getAttribute('type'), 'vga');
  assert.equal(kids(d, 'os').flatMap((o) => kids(o, 'loader')).length, 0, 'bios: no loader');
  assert.equal(kids(d, 'seclabel').length, 0);
  // as the QEMU backend's -nodefaults: no USB controller (libvirt would add a qemu-xhci)
  assert.deepEqual(
    kids(one(d, 'devices'), 'controller').map((c) => [c.getAttribute('type'), c.getAttribute('model')]),
    [['usb', 'none']],
  );
});

test('kvm domains pass the host CPU through; a cpu model is used as written', () => {
  assert.equal(one(parse(buildDomainXml(input({}, { type: 'kvm' }))), 'cpu').getAttribute('mode'), 'host-passthrough');
  const d = parse(buildDomainXml(input({ cpuModel: 'Skylake-Client' })));
  assert.equal(one(d, 'cpu/model').textContent, 'Skylake-Client');
});

test('user networking: slirp NIC without forwards in the XML; passt gets <backend> and a <portForward> per forward', () => {
  const slirp = parse(buildDomainXml(input()));
  const nic = one(slirp, 'devices/interface');
  assert.equal(nic.getAttribute('type'), 'user');
  // the MAC QEMU gives its first NIC: the same NIC at every define, on both backends
  assert.equal(one(nic, 'mac').getAttribute('address'), '52:54:00:12:34:56');
  assert.equal(kids(nic, 'backend').length, 0);
  assert.equal(kids(nic, 'portForward').length, 0);
  const passt = one(
    parse(
      buildDomainXml(
        input(
          {},
          {
            userNet: {
              backend: 'passt',
              forwards: [
                { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 40022, guestPort: 22 },
                { protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53 },
              ],
            },
          },
        ),
      ),
    ),
    'devices/interface',
  );
  assert.equal(one(passt, 'backend').getAttribute('type'), 'passt');
  const fw = kids(passt, 'portForward');
  assert.deepEqual(
    fw.map((f) => [
      f.getAttribute('proto'),
      f.getAttribute('address'),
      one(f, 'range').getAttribute('start'),
      one(f, 'range').getAttribute('to'),
    ]),
    [
      ['tcp', '127.0.0.1', '40022', '22'],
      ['udp', '127.0.0.1', '5353', '53'],
    ],
  );
});

test('network none: no NIC; bridge: a bridge NIC with the stable MAC', () => {
  assert.equal(kids(one(parse(buildDomainXml(input({ network: { mode: 'none' } }))), 'devices'), 'interface').length, 0);
  const br = one(
    parse(buildDomainXml(input({ network: { mode: 'tap', bridge: 'br0' } }, { tapMac: '52:54:00:aa:bb:cc' }))),
    'devices/interface',
  );
  assert.equal(br.getAttribute('type'), 'bridge');
  assert.equal(one(br, 'source').getAttribute('bridge'), 'br0');
  assert.equal(one(br, 'mac').getAttribute('address'), '52:54:00:aa:bb:cc');
});

test('UEFI: pflash loader and a per-VM NVRAM file from the template; Secure Boot adds SMM', () => {
  const fw = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' };
  const d = parse(buildDomainXml(input({ firmware: 'uefi' }, { firmware: fw })));
  assert.equal(one(d, 'os/loader').textContent, fw.code);
  assert.equal(one(d, 'os/loader').getAttribute('secure'), 'no');
  assert.equal(one(d, 'os/nvram').textContent, '/s/vms/web/efi-vars.fd');
  assert.equal(one(d, 'os/nvram').getAttribute('template'), fw.varsTemplate);
  assert.equal(kids(one(d, 'features'), 'smm').length, 0);
  const s = parse(buildDomainXml(input({ firmware: 'uefi-secure' }, { firmware: fw })));
  assert.equal(one(s, 'os/loader').getAttribute('secure'), 'yes');
  assert.equal(one(s, 'features/smm').getAttribute('state'), 'on');
  assert.throws(
    () => buildDomainXml(input({ firmware: 'uefi' })),
    (e: unknown) => e instanceof BackendError && e.reason === 'FirmwareMissing',
  );
  // a remote host: its libvirt picks OVMF (autoselection) by the features asked for, and names no file of ours
  const h = parse(buildDomainXml(input({ firmware: 'uefi-secure' }, { firmware: 'host', paths: { ...input().paths, nvram: null } })));
  assert.equal(one(h, 'os').getAttribute('firmware'), 'efi');
  assert.deepEqual(
    kids(one(h, 'os/firmware'), 'feature').map((f) => `${f.getAttribute('name')}=${f.getAttribute('enabled')}`),
    ['secure-boot=yes', 'enrolled-keys=yes'],
  );
  assert.equal(kids(one(h, 'os'), 'loader').length + kids(one(h, 'os'), 'nvram').length, 0);
  assert.equal(one(h, 'features/smm').getAttribute('state'), 'on');
});

test('named volumes carry their serial; host folders are virtiofs with shared memory; PCI devices are managed hostdevs', () => {
  const d = parse(
    buildDomainXml(
      input(
        {
          volumes: [
            { kind: 'named', name: 'data', target: '/data', readOnly: true },
            { kind: 'host', source: '/srv/site', target: '/site', readOnly: false },
          ],
          devices: [{ pci: '01:00.0', romFile: '/roms/gpu.rom' }],
        },
        { hostFolders: [{ tag: 'tend-host-0', source: '/srv/site' }] },
      ),
    ),
  );
  const vol = kids(one(d, 'devices'), 'disk')[2];
  assert.equal(one(vol, 'source').getAttribute('file'), '/s/volumes/data.qcow2');
  assert.equal(one(vol, 'serial').textContent, 'data');
  assert.equal(kids(vol, 'readonly').length, 1);
  assert.equal(kids(vol, 'boot').length, 0);
  const fs = one(d, 'devices/filesystem');
  assert.equal(one(fs, 'driver').getAttribute('type'), 'virtiofs');
  assert.equal(one(fs, 'source').getAttribute('dir'), '/srv/site');
  assert.equal(one(fs, 'target').getAttribute('dir'), 'tend-host-0');
  assert.equal(one(d, 'memoryBacking/access').getAttribute('mode'), 'shared');
  const h = one(d, 'devices/hostdev');
  assert.equal(h.getAttribute('managed'), 'yes');
  const a = one(h, 'source/address');
  assert.deepEqual(
    ['domain', 'bus', 'slot', 'function'].map((k) => a.getAttribute(k)),
    ['0x0000', '0x01', '0x00', '0x0'],
  );
  assert.equal(one(h, 'rom').getAttribute('file'), '/roms/gpu.rom');
});

test('extra args and the project NIC go to <qemu:commandline>; root seclabel when asked', () => {
  const d = parse(buildDomainXml(input({ extraArgs: ['-device', 'virtio-balloon'] }, { runAsRoot: true })));
  const cl = [...d.children].find((c) => c.localName === 'commandline' && c.namespaceURI === QEMU_NS);
  assert.ok(cl, 'qemu:commandline in the qemu namespace');
  assert.deepEqual(
    [...cl.children].map((c) => c.getAttribute('value')),
    ['-device', 'virtio-balloon'],
  );
  const sl = one(d, 'seclabel');
  assert.equal(sl.getAttribute('model'), 'dac');
  assert.equal(sl.getAttribute('relabel'), 'no');
  assert.equal(one(sl, 'label').textContent, '+0:+0');
});

test("snippets: device elements into <devices>, others into <domain> replacing tend's; duplicates once", () => {
  const channel = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
  const d = parse(
    buildDomainXml(
      input({
        libvirt: {
          snippets: [
            channel,
            channel,
            "<video><model type='virtio' heads='1'/></video>",
            "<clock offset='localtime'/>",
            '<!-- a comment --><iothreads>2</iothreads>',
          ],
        },
      } as Partial<VmDraft>),
    ),
  );
  const devices = one(d, 'devices');
  assert.equal(kids(devices, 'channel').length, 1);
  assert.equal(one(devices, 'channel/target').getAttribute('name'), 'org.qemu.guest_agent.0');
  assert.deepEqual(
    kids(devices, 'video').map((v) => one(v, 'model').getAttribute('type')),
    ['vga', 'virtio'],
  );
  assert.equal(one(d, 'clock').getAttribute('offset'), 'localtime', "the snippet replaced tend's <clock>");
  assert.equal(one(d, 'iothreads').textContent, '2');
});

test('a snippet that is not one well-formed element is a clear error naming it', () => {
  for (const bad of ['<channel type="unix">', 'text', '<a/><b/>']) {
    assert.throws(
      () => buildDomainXml(input({ libvirt: { snippets: [bad] } } as Partial<VmDraft>)),
      (e: unknown) => e instanceof BackendError && e.reason === 'SnippetInvalid' && /snippet 1/.test(e.message),
      bad,
    );
  }
});

test('metadata: the spec, its digest, disk image and ports round-trip through the domain XML; XML special characters survive', () => {
  const i = input({ extraArgs: ['-smbios', 'type=1,product=<a & "b">'] });
  const xml = buildDomainXml(i);
  const d = parse(xml);
  const md = [...one(d, 'metadata').children].find((c) => c.namespaceURI === TEND_NS);
  assert.ok(md);
  const r = readMetadata(xml);
  assert.ok(r.ok, r.ok ? '' : r.why);
  assert.deepEqual(r.value.spec, i.vm);
  assert.equal(r.value.diskImage, 'sha256-aa');
  assert.deepEqual(r.value.ports, { ssh: '127.0.0.1:40022' });
  assert.equal(r.value.project, 'demo');
  assert.equal(r.value.projectDir, '/p/demo');
  assert.equal(specDigest(r.value.spec), specDigest(i.vm));
});

test('metadata: a domain without it, or with a spec that does not match its digest, is not trusted', () => {
  assert.deepEqual(readMetadata("<domain type='kvm'><name>x</name></domain>"), { ok: false, why: 'no tend metadata' });
  const xml = buildDomainXml(input()).replace('"memory":1024', '"memory":4096');
  const r = readMetadata(xml);
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.why, /digest/);
});

test('spec digest ignores key order and absent optional fields', () => {
  const a = input().vm;
  const b = JSON.parse(JSON.stringify(a)) as typeof a;
  const reordered = Object.fromEntries(Object.entries(b).reverse()) as typeof a;
  assert.equal(specDigest(reordered), specDigest(a));
  assert.notEqual(specDigest({ ...a, memory: 2048 }), specDigest(a));
});

test('video: vga by default, the model as chosen, none is none; graphics only on request, on 127.0.0.1', () => {
  const def = parse(buildDomainXml(input()));
  assert.equal(one(def, 'devices/video/model').getAttribute('type'), 'vga');
  assert.equal(kids(one(def, 'devices'), 'graphics').length, 0);
  for (const video of ['virtio', 'qxl', 'cirrus', 'none'] as const) {
    assert.equal(one(parse(buildDomainXml(input({ video } as Partial<VmDraft>))), 'devices/video/model').getAttribute('type'), video);
  }
  for (const graphics of ['vnc', 'spice'] as const) {
    const g = one(parse(buildDomainXml(input({ graphics } as Partial<VmDraft>))), 'devices/graphics');
    assert.equal(g.getAttribute('type'), graphics);
    assert.equal(g.getAttribute('autoport'), 'yes');
    assert.equal(g.getAttribute('listen'), '127.0.0.1');
    assert.equal(one(g, 'listen').getAttribute('address'), '127.0.0.1');
  }
  assert.equal(kids(one(parse(buildDomainXml(input({ graphics: 'none' } as Partial<VmDraft>))), 'devices'), 'graphics').length, 0);
});

test('saved-state validity compares the XML without tend metadata and passt host ports: a memory edit differs, new ports do not', () => {
  const passt = (hostPort: number, memory = 1024, provision = false) =>
    buildDomainXml(
      input({ memory, ...(provision ? { provision: [{ kind: 'shell', inline: ['true'] }] } : {}) } as Partial<VmDraft>, {
        userNet: { backend: 'passt', forwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort, guestPort: 22 }] },
      }),
    );
  const a = hardwareXml(passt(40022));
  assert.doesNotMatch(a, /metadata|portForward|tend:vm/);
  assert.match(a, /<memory unit="MiB">1024<\/memory>/);
  assert.equal(hardwareXml(passt(40999)), a, 'another host port: same hardware');
  assert.equal(hardwareXml(passt(40022, 1024, true)), a, 'a live field of the spec (provision steps): same hardware');
  assert.notEqual(hardwareXml(passt(40022, 2048)), a, 'a memory edit');
});

test("the NIC, RNG, display and the two disks sit on the root bus at the QEMU backend's slots (no pcie-root-port)", () => {
  const xml = buildDomainXml(input({ devices: [{ pci: '01:00.0', romFile: null }] }));
  const d = parse(xml);
  const devices = one(d, 'devices');
  const at = (el: Element): string[] => {
    const a = one(el, 'address');
    return ['type', 'domain', 'bus', 'slot', 'function'].map((k) => a.getAttribute(k) ?? '');
  };
  const slot = (n: number): string[] => ['pci', '0x0000', '0x00', `0x0${n}`, '0x0'];
  assert.deepEqual(kids(devices, 'disk').map(at), [slot(SLOT.disk), slot(SLOT.seed)]);
  assert.deepEqual(at(one(devices, 'interface')), slot(SLOT.nic));
  assert.deepEqual(at(one(devices, 'rng')), slot(SLOT.rng));
  assert.deepEqual(at(one(devices, 'video')), slot(SLOT.video));
  assert.equal(new Set(Object.values(SLOT)).size, 5, 'five different slots');
  // libvirt places the rest; a passed-through device's <source><address> is the host's, not a placement
  assert.doesNotMatch(/<hostdev[\s\S]*<\/hostdev>/.exec(xml)![0], /<address type="pci"/);
  assert.equal(kids(devices, 'controller').filter((c) => c.getAttribute('model') === 'pcie-root-port').length, 0);
  // a bridge NIC too; no display: no address for <video> (libvirt refuses one on model none)
  const tap = parse(buildDomainXml(input({ network: { mode: 'tap', bridge: 'br0' }, video: 'none' } as Partial<VmDraft>)));
  assert.deepEqual(at(one(tap, 'devices/interface')), slot(SLOT.nic));
  assert.equal(kids(one(tap, 'devices/video'), 'address').length, 0);
});

test('a saved state or template of a domain defined before tend placed devices still fits; a real change does not', () => {
  const now = hardwareXml(buildDomainXml(input({ memory: 512 })));
  const before = now
    .split('\n')
    .filter((l) => !l.includes('<address type="pci"'))
    .join('\n');
  assert.notEqual(before, now);
  assert.equal(xmlDifference(before, now), null);
  assert.match(String(xmlDifference(before, hardwareXml(buildDomainXml(input({ memory: 640 }))))), /512.*→.*640/);
  // the host address of a passed-through device is compared
  const a = hardwareXml(buildDomainXml(input({ devices: [{ pci: '01:00.0', romFile: null }] })));
  const b = hardwareXml(buildDomainXml(input({ devices: [{ pci: '02:00.0', romFile: null }] })));
  assert.notEqual(xmlDifference(a, b), null);
});
