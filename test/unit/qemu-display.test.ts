import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import { validateVmSpec } from '../../schemas/validators.generated.js';
import { buildArgv, type ArgvInput } from '../../src/qemu/argv.js';
import { displayArgs, displayProblem, parseDeviceHelp, VIDEO_DEVICE, type DisplaySupport } from '../../src/qemu/display.js';
import { allocatePorts, forwardsOf, tryBind } from '../../src/qemu/ports.js';
import { validatePortRecord } from '../../src/state/validators.generated.js';
import { upgradeAppliedSpec, validateApplied } from '../../src/qemu/observe.js';

const paths = {
  disk: '/s/disk.qcow2',
  seed: null,
  pidfile: '/s/qemu.pid',
  qmp: '/s/qmp.sock',
  serial: '/s/serial.sock',
  consoleLog: '/s/console.log',
  volumes: {},
};
const vmWith = (draft: Partial<VmDraft> = {}) =>
  applyDefaults({ name: 'web', image: { kind: 'path', ref: '/img.qcow2' }, ...draft } as VmDraft);
const input = (draft: Partial<VmDraft> = {}, extra: Partial<ArgvInput> = {}): ArgvInput => ({
  vm: vmWith(draft),
  paths,
  accel: 'tcg',
  ports: [],
  sshPort: 40022,
  ...extra,
});
const values = (argv: string[], flag: string): string[] => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));

test('every VM gets the standard VGA by default (stock images hang in GRUB without a video device); no VNC, no SPICE', () => {
  const vm = vmWith();
  assert.equal(vm.video, 'vga');
  assert.equal(vm.graphics, 'none');
  const a = buildArgv(input());
  assert.ok(values(a, '-device').includes('VGA'), `no VGA device in ${a.join(' ')}`);
  // -nodefaults and -vga none: exactly one display device, the one tend names
  assert.ok(a.includes('-nodefaults'));
  assert.deepEqual(values(a, '-vga'), ['none']);
  assert.deepEqual(values(a, '-display'), ['none']);
  assert.ok(!a.includes('-vnc') && !a.includes('-spice'));
});

test('each video setting is its VGA-compatible QEMU device; none has no display device at all', () => {
  const expect = { vga: 'VGA', virtio: 'virtio-vga', qxl: 'qxl-vga', cirrus: 'cirrus-vga' } as const;
  for (const [video, device] of Object.entries(expect)) {
    const devices = values(buildArgv(input({ video: video as keyof typeof expect })), '-device');
    assert.ok(devices.includes(device), `${video}: ${devices.join(' ')}`);
    for (const other of Object.values(VIDEO_DEVICE)) if (other !== device) assert.ok(!devices.includes(other));
  }
  const none = buildArgv(input({ video: 'none' }));
  for (const d of Object.values(VIDEO_DEVICE)) assert.ok(!values(none, '-device').includes(d));
  assert.deepEqual(values(none, '-vga'), ['none']);
});

test('graphics: VNC and SPICE listen on 127.0.0.1 only, at the allocated port', () => {
  assert.deepEqual(values(buildArgv(input({ graphics: 'vnc' }, { graphicsPort: 5903 })), '-vnc'), ['127.0.0.1:3']);
  assert.deepEqual(values(buildArgv(input({ graphics: 'spice' }, { graphicsPort: 5911 })), '-spice'), [
    'port=5911,addr=127.0.0.1,disable-ticketing=on',
  ]);
  assert.throws(() => displayArgs(vmWith({ graphics: 'vnc' })), /needs a host port/);
  assert.throws(() => displayArgs(vmWith({ graphics: 'vnc' }), 5800), /5900 or above/);
});

test('a lost port record is rebuilt from the argv with the VNC/SPICE port; such a record is a valid ports.json', () => {
  const vnc = forwardsOf(buildArgv(input({ graphics: 'vnc' }, { graphicsPort: 5907 })));
  assert.deepEqual(vnc, { ssh: '127.0.0.1:40022', vnc: '127.0.0.1:5907' });
  const spice = forwardsOf(buildArgv(input({ graphics: 'spice' }, { graphicsPort: 5931 })));
  assert.deepEqual(spice, { ssh: '127.0.0.1:40022', spice: '127.0.0.1:5931' });
  for (const r of [vnc, spice]) assert.equal(validatePortRecord(r), true);
  assert.equal(validatePortRecord({ rdp: '127.0.0.1:3389' }), false);
});

test('the model takes the canonical names only; the dialects map aliases (std) onto them', () => {
  assert.equal(validateVmSpec(vmWith({ video: 'virtio', graphics: 'spice' })), true);
  for (const bad of [{ video: 'std' }, { video: 'VGA' }, { graphics: 'rdp' }]) {
    assert.equal(validateVmSpec({ ...vmWith(), ...bad }), false, JSON.stringify(bad));
  }
  const { video: _v, graphics: _g, ...older } = vmWith();
  assert.equal(validateVmSpec(older), false, 'video and graphics are required in a full spec');
});

test('a spec recorded before video existed reads as what that tend ran (video none), not as a damaged record', () => {
  const { video: _v, graphics: _g, ...older } = vmWith();
  const up = upgradeAppliedSpec(older);
  assert.equal(up.video, 'none');
  assert.equal(up.graphics, 'none');
  const current = vmWith({ video: 'qxl', graphics: 'vnc' });
  assert.deepEqual(upgradeAppliedSpec(current), current);
  const record = { spec: { ...older }, diskImage: null };
  assert.equal(validateApplied(record), true, JSON.stringify(validateApplied.errors));
  assert.equal((record.spec as { video?: string }).video, 'none');
  assert.equal(validateApplied({ spec: { ...older, cpus: 'two' }, diskImage: null }), false);
  assert.ok((validateApplied.errors ?? []).length > 0);
});

// Real output of QEMU 7.2 (Debian 12) `qemu-system-x86_64 -device help`, abridged.
const DEVICE_HELP = `Display devices:
name "ati-vga", bus PCI
name "bochs-display", bus PCI
name "cirrus-vga", bus PCI, desc "Cirrus CLGD 54xx VGA"
name "qxl-vga", bus PCI, desc "Spice QXL GPU (primary, vga compatible)"
name "VGA", bus PCI
name "virtio-gpu-pci", bus PCI, alias "virtio-gpu"
name "virtio-vga", bus PCI
`;

test('device models are read from -device help; a missing one is a clear error that names what works', () => {
  const devices = parseDeviceHelp(DEVICE_HELP);
  for (const d of ['VGA', 'virtio-vga', 'qxl-vga', 'cirrus-vga', 'virtio-gpu-pci', 'virtio-gpu']) assert.ok(devices.has(d), d);
  const full: DisplaySupport = { devices, vnc: true, spice: true };
  for (const video of ['none', 'vga', 'virtio', 'qxl', 'cirrus'] as const) {
    for (const graphics of ['none', 'vnc', 'spice'] as const) {
      assert.equal(displayProblem(vmWith({ video, graphics }), full, 'qemu-system-x86_64'), null);
    }
  }
  const noQxl: DisplaySupport = { devices: new Set([...devices].filter((d) => d !== 'qxl-vga')), vnc: true, spice: false };
  const qxl = displayProblem(vmWith({ video: 'qxl' }), noQxl, 'qemu-system-x86_64');
  assert.match(qxl ?? '', /^web: video qxl needs QEMU's qxl-vga device, which qemu-system-x86_64 does not have/);
  assert.match(qxl ?? '', /use video "vga" or "virtio" or "cirrus"/);
  const spice = displayProblem(vmWith({ graphics: 'spice' }), noQxl, 'qemu-system-x86_64');
  assert.match(spice ?? '', /graphics spice is not available in qemu-system-x86_64.*or use graphics "vnc"/);
  // an unreadable device list (the probe failed) blocks nothing: QEMU itself will say
  assert.equal(displayProblem(vmWith({ video: 'qxl' }), { devices: new Set(), vnc: true, spice: true }, 'q'), null);
});

function occupy(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test('the graphics port is picked free from 5900-5999 on 127.0.0.1, recorded, and kept while free', async () => {
  const a = await allocatePorts('web', [], undefined, { needSsh: true, graphics: 'vnc' });
  assert.ok(a.graphicsPort !== undefined && a.graphicsPort >= 5900 && a.graphicsPort < 6000, String(a.graphicsPort));
  assert.equal(a.record.vnc, `127.0.0.1:${a.graphicsPort}`);
  assert.notEqual(a.graphicsPort, a.sshPort);
  const again = await allocatePorts('web', [], a.record, { needSsh: true, graphics: 'vnc' });
  assert.equal(again.graphicsPort, a.graphicsPort);
  // taken by someone else meanwhile: another free one
  const squatter = await occupy(a.graphicsPort as number);
  try {
    if (squatter) {
      const moved = await allocatePorts('web', [], a.record, { needSsh: true, graphics: 'vnc' });
      assert.notEqual(moved.graphicsPort, a.graphicsPort);
      assert.notEqual(await tryBind('127.0.0.1', moved.graphicsPort as number), null, 'the port is not left bound');
    }
  } finally {
    await new Promise<void>((r) => (squatter ? squatter.close(() => r()) : r()));
  }
  const spice = await allocatePorts('web', [], undefined, { needSsh: false, graphics: 'spice' });
  assert.ok(spice.record.spice?.startsWith('127.0.0.1:59'));
  assert.equal(spice.record.vnc, undefined);
  const none = await allocatePorts('web', [], undefined, { needSsh: true, graphics: 'none' });
  assert.equal(none.graphicsPort, undefined);
  assert.deepEqual(Object.keys(none.record), ['ssh']);
});
