/**
 * A VM's libvirt domain XML: a pure function of the spec, the VM's file paths, the chosen domain
 * type and the allocated host ports (no fs, no process), built with xmlbuilder2 (never by string
 * concatenation) and unit-tested by parsing the result back.
 *
 * What tend compares lives in the domain itself, under <metadata> (metadata.ts): the spec the
 * domain was defined with, its digest, the image the disk came from and the host ports.
 *
 * `libvirt.snippets` (raw XML from the file) are merged in by element name, as ov does: device
 * elements (<channel>, <video>, <hostdev>, ...) are appended to <devices>; any other element
 * goes into <domain>, replacing tend's element of the same name (so a snippet's <cpu> or <clock>
 * wins over tend's). Identical snippets are merged once.
 */
import { create, fragment } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import type { VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import type { ProjectNetMember } from '../net/project-net.js';
import { volumeSerial } from '../seed/volumes.js';
import { projectNetArgs } from '../qemu/project-net.js';
import { QEMU_FIRST_DEFAULT_MAC } from '../seed/network-config.js';
import { fullPciAddress } from '../qemu/devices.js';
import { metadataElement, type TendMetadata } from './metadata.js';
import { parseXml } from '../import/xml.js';

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

/** Element names libvirt accepts inside <devices> (a snippet with one of these goes there). */
export const DEVICE_ELEMENTS = new Set([
  'emulator',
  'disk',
  'controller',
  'lease',
  'filesystem',
  'interface',
  'input',
  'hub',
  'graphics',
  'video',
  'audio',
  'console',
  'serial',
  'parallel',
  'channel',
  'sound',
  'hostdev',
  'redirdev',
  'redirfilter',
  'smartcard',
  'watchdog',
  'memballoon',
  'rng',
  'tpm',
  'nvram',
  'panic',
  'shmem',
  'memory',
  'iommu',
  'vsock',
  'crypto',
  'pstore',
]);

/** A host port forward of user-mode networking. */
export interface Forward {
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

export interface DomainInput {
  vm: VmSpec;
  /** the libvirt domain name (names.ts) */
  domainName: string;
  /** the domain's UUID when it is already defined (a redefinition must name it) */
  uuid?: string | null;
  /** kvm (hardware) or qemu (TCG) */
  type: 'kvm' | 'qemu';
  metadata: TendMetadata;
  paths: {
    disk: string;
    /** null: no seed (cloud-init off) */
    seed: string | null;
    /** named volume -> its qcow2 path */
    volumes: Record<string, string>;
    /** unix socket the serial console listens on; null: a pty (remote hosts) */
    serialSocket: string | null;
    /** file the serial console is logged to (by virtlogd); null: none */
    consoleLog: string | null;
    /** this VM's own UEFI variable store (libvirt copies the template there when missing) */
    nvram: string | null;
  };
  /**
   * OVMF code image and variable store template; required when vm.firmware is not bios. 'host':
   * the host's libvirt picks OVMF from its firmware descriptors and keeps the variable store
   * itself (a remote host, whose files tend cannot name).
   */
  firmware: { code: string; varsTemplate: string } | 'host' | null;
  /** user networking: forward through passt (<portForward>, libvirt >= 9.2) or QEMU's slirp (hostfwd_add after start) */
  userNet: { backend: 'passt' | 'slirp'; forwards: Forward[] };
  /** host folders shared over virtiofs (libvirt starts virtiofsd itself) */
  hostFolders: { tag: string; source: string }[];
  /** the project network's NIC (src/net/project-net.ts), through <qemu:commandline> */
  projectNet: ProjectNetMember | null;
  /** stable MAC of a tap/bridge NIC */
  tapMac: string | null;
  /**
   * Run QEMU as root without relabelling tend's files (qemu:///system with tend's state under a
   * 0700 folder: libvirt's default `libvirt-qemu` user could not reach it). docs/libvirt.md.
   */
  runAsRoot: boolean;
}

/** Build the domain XML (a string for `virsh define`). Throws BackendError on a bad snippet. */
export function buildDomainXml(input: DomainInput): string {
  const { vm } = input;
  const root = create({ version: '1.0' }).ele('domain', { type: input.type, 'xmlns:qemu': QEMU_NS });
  root.ele('name').txt(input.domainName);
  if (input.uuid) root.ele('uuid').txt(input.uuid);
  root.ele('title').txt(`tend: ${input.metadata.project}/${vm.name}`);
  metadataElement(root.ele('metadata'), input.metadata);
  root.ele('memory', { unit: 'MiB' }).txt(String(vm.memory));
  root.ele('vcpu').txt(String(vm.cpus));

  const secure = vm.firmware === 'uefi-secure';
  const fw = vm.firmware === 'bios' ? null : input.firmware;
  const os = root.ele('os', fw === 'host' ? { firmware: 'efi' } : {});
  os.ele('type', { arch: 'x86_64', machine: vm.machine }).txt('hvm');
  if (fw === 'host') {
    // libvirt's firmware autoselection: it makes <nvram> from the chosen template, undefine --nvram deletes it
    const want = os.ele('firmware');
    want.ele('feature', { enabled: secure ? 'yes' : 'no', name: 'secure-boot' });
    want.ele('feature', { enabled: secure ? 'yes' : 'no', name: 'enrolled-keys' });
  } else if (vm.firmware !== 'bios') {
    if (!fw) throw new BackendError('FirmwareMissing', `${vm.name}: firmware ${vm.firmware} needs OVMF (apt-get install ovmf)`);
    os.ele('loader', { readonly: 'yes', type: 'pflash', secure: secure ? 'yes' : 'no' }).txt(fw.code);
    const nv = os.ele('nvram', { template: fw.varsTemplate });
    if (input.paths.nvram) nv.txt(input.paths.nvram);
  }

  const features = root.ele('features');
  features.ele('acpi');
  features.ele('apic');
  if (secure) features.ele('smm', { state: 'on' });

  if (vm.cpuModel) root.ele('cpu', { mode: 'custom', match: 'exact' }).ele('model', { fallback: 'allow' }).txt(vm.cpuModel);
  else root.ele('cpu', { mode: input.type === 'kvm' ? 'host-passthrough' : 'maximum' });
  root.ele('clock', { offset: 'utc' });
  // tend decides what a stop or a crash means (restart policy): libvirt only reports it
  root.ele('on_poweroff').txt('destroy');
  root.ele('on_reboot').txt('restart');
  root.ele('on_crash').txt('destroy');
  if (input.hostFolders.length > 0) {
    const mb = root.ele('memoryBacking');
    mb.ele('source', { type: 'memfd' });
    mb.ele('access', { mode: 'shared' });
  }

  const dev = root.ele('devices');
  disk(dev, { file: input.paths.disk, format: 'qcow2', target: 'vda', boot: true, slot: SLOT.disk });
  let letter = 1;
  const nextTarget = (): string => `vd${String.fromCharCode(97 + letter++)}`;
  if (input.paths.seed) disk(dev, { file: input.paths.seed, format: 'raw', target: nextTarget(), readOnly: true, slot: SLOT.seed });
  for (const v of vm.volumes) {
    if (v.kind !== 'named') continue;
    const p = input.paths.volumes[v.name];
    if (!p) throw new BackendError('VolumeMissing', `${vm.name}: no path for volume ${v.name}`);
    disk(dev, { file: p, format: 'qcow2', target: nextTarget(), readOnly: v.readOnly, serial: volumeSerial(v.name) });
  }
  for (const f of input.hostFolders) {
    // read-only is enforced by the guest's mount (libvirt 9.0 refuses <readonly/> on virtiofs)
    const fs = dev.ele('filesystem', { type: 'mount', accessmode: 'passthrough' });
    fs.ele('driver', { type: 'virtiofs' });
    fs.ele('source', { dir: f.source });
    fs.ele('target', { dir: f.tag });
  }

  networkElements(dev, input);

  const serial = dev.ele('serial', { type: input.paths.serialSocket ? 'unix' : 'pty' });
  if (input.paths.serialSocket) serial.ele('source', { mode: 'bind', path: input.paths.serialSocket });
  if (input.paths.consoleLog) serial.ele('log', { file: input.paths.consoleLog, append: 'on' });
  serial.ele('target', { port: '0' });
  const rng = dev.ele('rng', { model: 'virtio' });
  rng.ele('backend', { model: 'random' }).txt('/dev/urandom');
  onRootBus(rng, SLOT.rng);
  // a display adapter by default: stock images' GRUB hangs without one (design §4); none = none
  const video = dev.ele('video');
  video.ele('model', { type: vm.video ?? 'vga' });
  if (vm.video !== 'none') onRootBus(video, SLOT.video);
  if (vm.graphics === 'vnc' || vm.graphics === 'spice') {
    // on 127.0.0.1 only, at a port libvirt picks free (the backend reads it back after start)
    const g = dev.ele('graphics', { type: vm.graphics, autoport: 'yes', listen: '127.0.0.1' });
    g.ele('listen', { type: 'address', address: '127.0.0.1' });
  }
  dev.ele('memballoon', { model: 'none' });
  // no USB controller: libvirt adds a qemu-xhci to every q35 domain, the QEMU backend has none
  // (-nodefaults), and under TCG its emulation is guest time spent on nothing
  dev.ele('controller', { type: 'usb', model: 'none' });

  for (const d of vm.devices) {
    const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(fullPciAddress(d.pci));
    if (!m) throw new BackendError('BadPciAddress', `${vm.name}: bad PCI address ${d.pci}`);
    const h = dev.ele('hostdev', { mode: 'subsystem', type: 'pci', managed: 'yes' });
    h.ele('source').ele('address', { domain: `0x${m[1]}`, bus: `0x${m[2]}`, slot: `0x${m[3]}`, function: `0x${m[4]}` });
    if (d.romFile) h.ele('rom', { file: d.romFile });
  }

  if (input.runAsRoot) root.ele('seclabel', { type: 'static', model: 'dac', relabel: 'no' }).ele('label').txt('+0:+0');

  const extra = [...(input.projectNet ? projectNetArgs(input.projectNet) : []), ...vm.extraArgs];
  if (extra.length > 0) {
    const cl = root.ele('qemu:commandline');
    for (const a of extra) cl.ele('qemu:arg', { value: a });
  }

  mergeSnippets(root, dev, vm);
  return root.end({ prettyPrint: true, headless: true });
}

function disk(
  devices: XMLBuilder,
  d: { file: string; format: 'qcow2' | 'raw'; target: string; boot?: boolean; readOnly?: boolean; serial?: string; slot?: number },
): void {
  const el = devices.ele('disk', { type: 'file', device: 'disk' });
  el.ele('driver', { name: 'qemu', type: d.format, ...(d.format === 'qcow2' ? { cache: 'writeback', discard: 'unmap' } : {}) });
  el.ele('source', { file: d.file });
  el.ele('target', { dev: d.target, bus: 'virtio' });
  if (d.serial) el.ele('serial').txt(d.serial);
  if (d.readOnly) el.ele('readonly');
  // boot order on the device: only the VM's own disk boots, whatever the PCI order of the others
  if (d.boot) el.ele('boot', { order: '1' });
  if (d.slot) onRootBus(el, d.slot);
}

/**
 * The PCI slots of the devices every VM has, on the root bus (pcie.0) where the QEMU backend's
 * QEMU puts them (its argv's order: NIC, RNG, display, then the `if=virtio` disks). Left to itself,
 * libvirt puts each PCIe device behind a pcie-root-port of its own (and adds a spare port), where a
 * virtio device is modern-only. Measured under TCG on the same image (docs/decisions.md): with
 * root ports a libvirt boot was 4-5 s slower than the QEMU backend's in most rounds; with this
 * layout its guest's userspace boot (systemd-analyze) took 31.4-31.9 s, as fast as the QEMU
 * backend's best. Other devices (volumes, host folders, PCI passthrough) are placed by libvirt.
 */
export const SLOT = { nic: 0x01, rng: 0x02, video: 0x03, disk: 0x04, seed: 0x05 } as const;

function onRootBus(el: XMLBuilder, slot: number): void {
  el.ele('address', { type: 'pci', domain: '0x0000', bus: '0x00', slot: `0x${slot.toString(16).padStart(2, '0')}`, function: '0x0' });
}

function networkElements(dev: XMLBuilder, input: DomainInput): void {
  const { vm } = input;
  switch (vm.network.mode) {
    case 'none':
      return;
    case 'tap': {
      const nic = vm.network.bridge ? dev.ele('interface', { type: 'bridge' }) : dev.ele('interface', { type: 'ethernet' });
      if (input.tapMac) nic.ele('mac', { address: input.tapMac });
      if (vm.network.bridge) nic.ele('source', { bridge: vm.network.bridge });
      nic.ele('model', { type: 'virtio' });
      onRootBus(nic, SLOT.nic);
      return;
    }
    case 'user': {
      const nic = dev.ele('interface', { type: 'user' });
      // QEMU's own first MAC, as the QEMU backend's NIC has: without one libvirt picks a new random
      // MAC at every define (each start), and a guest that configured its NIC at first boot waited
      // minutes for DHCP on the next (the project network's network-config pins this MAC too)
      nic.ele('mac', { address: QEMU_FIRST_DEFAULT_MAC });
      nic.ele('model', { type: 'virtio' });
      onRootBus(nic, SLOT.nic);
      if (input.userNet.backend === 'passt') {
        nic.ele('backend', { type: 'passt' });
        for (const f of input.userNet.forwards) {
          nic
            .ele('portForward', { proto: f.protocol, address: f.hostAddress })
            .ele('range', { start: String(f.hostPort), to: String(f.guestPort) });
        }
      }
      return;
    }
  }
}

/** Parse one snippet into its element (exactly one root element; comments and blanks allowed). */
function parseSnippet(vm: VmSpec, text: string, index: number): XMLBuilder {
  let frag: XMLBuilder;
  try {
    // xmlbuilder2's reader forgives unclosed tags: the strict reader of src/import/xml.ts checks first
    parseXml(text);
    frag = fragment(text);
  } catch (err) {
    throw new BackendError('SnippetInvalid', `${vm.name}: libvirt snippet ${index + 1} is not well-formed XML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const elements = frag.node.childNodes ? [...frag.node.childNodes].filter((n) => n.nodeType === 1) : [];
  const stray = [...frag.node.childNodes].some((n) => n.nodeType === 3 && (n.textContent ?? '').trim() !== '');
  if (elements.length !== 1 || stray) {
    throw new BackendError(
      'SnippetInvalid',
      `${vm.name}: libvirt snippet ${index + 1} must be exactly one XML element (found ${elements.length})`,
    );
  }
  return frag;
}

function mergeSnippets(root: XMLBuilder, devices: XMLBuilder, vm: VmSpec): void {
  const seen = new Set<string>();
  (vm.libvirt?.snippets ?? []).forEach((text, i) => {
    const key = text.trim();
    if (seen.has(key)) return;
    seen.add(key);
    const frag = parseSnippet(vm, text, i);
    const el = [...frag.node.childNodes].find((n) => n.nodeType === 1) as Element;
    if (DEVICE_ELEMENTS.has(el.nodeName)) {
      devices.import(frag);
      return;
    }
    // a domain-level element replaces tend's own of the same name
    for (const c of [...root.node.childNodes]) if (c.nodeType === 1 && c.nodeName === el.nodeName) root.node.removeChild(c);
    root.import(frag);
  });
}
