/**
 * libvirt domain XML -> a tend.yaml service. What maps: name, memory, vCPUs, machine type,
 * CPU model, UEFI firmware (and Secure Boot), the first disk as the base image (tend never
 * writes it: each VM gets an overlay), its format, PCI host devices (with their ROM file),
 * <qemu:commandline> arguments. Everything else that changes what the VM is gets a warning
 * naming the part: extra disks, cdroms, bridged or direct NICs, extra NICs, USB devices and
 * redirection, shared folders, custom emulators, other architectures, devices with no tend
 * equivalent. Pure: the XML text is passed in.
 */
import { stringify } from 'yaml';
import { escapeDollars } from '../load/interpolate.js';
import { NAME_RE } from '../../schemas/names.js';
import { child, parseXml, type XmlElement } from './xml.js';

export interface ImportWarning {
  /** the XML element, e.g. "devices/disk[2]" */
  part: string;
  message: string;
}

export interface ImportedService {
  image?: string;
  image_format?: string;
  vm: {
    vcpu?: number;
    memory_mb?: number;
    machine?: string;
    cpu_model?: string;
    extra_args?: string[];
    video?: 'none' | 'vga' | 'virtio' | 'qxl' | 'cirrus';
    graphics?: 'vnc' | 'spice';
  };
  firmware?: 'uefi' | 'uefi-secure';
  devices?: { pci: string; rom_file?: string }[];
}

export interface ImportResult {
  /** project and service name (normalised domain name) */
  name: string;
  /** the domain's own name */
  rawName: string;
  service: ImportedService;
  warnings: ImportWarning[];
  /** the tend.yaml text, warnings as comments at the top */
  yaml: string;
}

const STANDARD_EMULATORS = /(^|\/)(qemu-system-x86_64|kvm|qemu-kvm)$/;
/** devices whose absence or presence does not change what the guest is (tend adds its own) */
const SILENT_DEVICES = new Set([
  'emulator',
  'console',
  'serial',
  'channel',
  'controller',
  'input',
  'memballoon',
  'rng',
  'audio',
  'panic',
  'parallel',
]);
/** top-level elements that describe libvirt's bookkeeping or behaviour tend has anyway */
const SILENT_TOP = new Set([
  'name',
  'uuid',
  'title',
  'description',
  'metadata',
  'memory',
  'vcpu',
  'os',
  'cpu',
  'devices',
  'features',
  'clock',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'pm',
  'seclabel',
  'resource',
  'sysinfo',
  'genid',
]);
const VIDEO_MODELS: Record<string, 'none' | 'vga' | 'virtio' | 'qxl' | 'cirrus'> = {
  none: 'none',
  vga: 'vga',
  virtio: 'virtio',
  qxl: 'qxl',
  cirrus: 'cirrus',
};
const UNIT_BYTES: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1e3,
  k: 1024,
  kib: 1024,
  mb: 1e6,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1e9,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1e12,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/** A libvirt name as a tend name: lower case, [a-z0-9-], at most 63 characters. */
export function normaliseName(name: string): string {
  const n = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return NAME_RE.test(n) ? n : 'vm';
}

/** <memory unit='KiB'>1048576</memory> -> MiB (rounded down). Null when unreadable. */
export function memoryMiB(el: XmlElement | undefined): number | null {
  if (!el) return null;
  const n = Number(el.text);
  const unit = UNIT_BYTES[(el.attrs.unit ?? 'KiB').toLowerCase()];
  if (!Number.isFinite(n) || !unit) return null;
  return Math.floor((n * unit) / 1024 ** 2);
}

function pciAddress(a: XmlElement | undefined): string | null {
  if (!a) return null;
  const hex = (v: string | undefined, width: number): string | null => {
    if (v === undefined) return null;
    const n = Number(v.startsWith('0x') ? Number.parseInt(v.slice(2), 16) : Number.parseInt(v, 16));
    return Number.isFinite(n) ? n.toString(16).padStart(width, '0') : null;
  };
  const d = hex(a.attrs.domain ?? '0x0000', 4);
  const b = hex(a.attrs.bus, 2);
  const s = hex(a.attrs.slot, 2);
  const f = a.attrs.function !== undefined ? Number.parseInt(a.attrs.function.replace(/^0x/, ''), 16) : null;
  if (d === null || b === null || s === null || f === null || !Number.isFinite(f)) return null;
  return `${d}:${b}:${s}.${f}`;
}

export function importDomainXml(xml: string): ImportResult {
  const dom = parseXml(xml);
  if (dom.name !== 'domain') throw new Error(`this is not a libvirt domain: the root element is <${dom.name}>, not <domain>`);
  const warnings: ImportWarning[] = [];
  const warn = (part: string, message: string): void => void warnings.push({ part, message });
  const rawName = child(dom, 'name')?.text ?? 'vm';
  const name = normaliseName(rawName);
  if (name !== rawName) warn('name', `the domain name "${rawName}" is not a valid tend name: imported as "${name}"`);

  const svc: ImportedService = { vm: {} };
  const mem = memoryMiB(child(dom, 'memory'));
  if (mem !== null) svc.vm.memory_mb = Math.max(64, mem);
  const current = memoryMiB(child(dom, 'currentMemory'));
  if (mem !== null && current !== null && current < mem) {
    warn('currentMemory', `the balloon target ${current} MiB is not mapped: the VM gets its full memory_mb ${Math.max(64, mem)}`);
  }
  const vcpuEl = child(dom, 'vcpu');
  const vcpu = Number(vcpuEl?.text);
  if (Number.isInteger(vcpu) && vcpu > 0) svc.vm.vcpu = vcpu;
  if (vcpuEl?.attrs.cpuset) warn('vcpu', `CPU pinning (cpuset ${vcpuEl.attrs.cpuset}) is not mapped: tend does not pin vCPUs`);
  for (const c of dom.children) {
    if (SILENT_TOP.has(c.name) || c.name === 'currentMemory' || c.name.endsWith(':commandline') || c.name === 'commandline') continue;
    warn(c.name, `<${c.name}> (tuning or placement) has no tend equivalent and is not imported`);
  }

  const osType = child(dom, 'os/type');
  if (osType?.attrs.arch && osType.attrs.arch !== 'x86_64') {
    warn('os/type', `architecture ${osType.attrs.arch}: tend runs x86_64 guests (qemu-system-x86_64); this VM will not boot as is`);
  }
  const machine = osType?.attrs.machine;
  if (machine) svc.vm.machine = /q35/.test(machine) ? 'q35' : /^pc(-i440fx)?/.test(machine) ? 'pc' : machine;
  const os = child(dom, 'os');
  const loader = child(os, 'loader');
  if (os?.attrs.firmware === 'efi' || loader?.attrs.type === 'pflash' || /OVMF|edk2/i.test(loader?.text ?? '')) {
    svc.firmware = loader?.attrs.secure === 'yes' ? 'uefi-secure' : 'uefi';
  }
  const kernel = child(os, 'kernel');
  if (kernel) warn('os/kernel', `direct kernel boot (${kernel.text}) is not mapped: tend boots the disk image`);
  const nvram = child(os, 'nvram');
  if (nvram && svc.firmware) {
    warn(
      'os/nvram',
      `the UEFI variable store${nvram.text ? ` ${nvram.text}` : ''} is not imported: tend starts from a fresh copy (boot entries reset)`,
    );
  }

  const cpu = child(dom, 'cpu');
  const model = child(cpu, 'model')?.text;
  const cpuMode = cpu?.attrs.mode ?? (model ? 'custom' : undefined);
  if (cpuMode === 'custom' && model) svc.vm.cpu_model = model;
  else if (cpuMode === 'host-passthrough') svc.vm.cpu_model = 'host';
  else if (cpuMode === 'host-model') {
    svc.vm.cpu_model = 'host';
    warn(
      'cpu',
      "mode host-model became cpu_model: host (QEMU's -cpu host passes the host CPU through; libvirt's host-model named the closest model)",
    );
  } else if (cpuMode === 'maximum') svc.vm.cpu_model = 'max';
  const topo = child(cpu, 'topology');
  if (topo) {
    const t = ['sockets', 'dies', 'cores', 'threads'].filter((k) => topo.attrs[k]).map((k) => `${k}=${topo.attrs[k]}`);
    warn('cpu/topology', `CPU topology (${t.join(', ')}) is not mapped: tend gives ${svc.vm.vcpu ?? 1} vCPUs as one socket each`);
  }
  const features = (cpu?.children ?? [])
    .filter((c) => c.name === 'feature')
    .map((f) => `${f.attrs.policy ?? 'require'} ${f.attrs.name ?? '?'}`);
  if (features.length > 0)
    warn('cpu/feature', `CPU feature flags (${features.join(', ')}) are not mapped: add them to vm.cpu_model by hand (e.g. host,-vmx)`);

  const devices = child(dom, 'devices');
  let diskSeen = false;
  let nicSeen = false;
  const pci: { pci: string; rom_file?: string }[] = [];
  const counts = new Map<string, number>();
  for (const d of devices?.children ?? []) {
    const n = (counts.get(d.name) ?? 0) + 1;
    counts.set(d.name, n);
    const part = `devices/${d.name}[${n}]`;
    switch (d.name) {
      case 'emulator':
        if (!STANDARD_EMULATORS.test(d.text)) warn(part, `custom emulator ${d.text}: tend runs qemu-system-x86_64 from PATH`);
        break;
      case 'disk': {
        const device = d.attrs.device ?? 'disk';
        const src = child(d, 'source');
        const file = src?.attrs.file;
        if (device === 'cdrom' || device === 'floppy') {
          warn(
            part,
            `${device}${file ? ` ${file}` : ''} is not imported (tend makes its own cloud-init seed; attach ISOs with vm.extra_args)`,
          );
          break;
        }
        if (diskSeen) {
          warn(
            part,
            `extra disk${file ? ` ${file}` : ''} is not imported: declare a named volume (top-level volumes + "name:/mount") for data disks`,
          );
          break;
        }
        if (!file) {
          warn(
            part,
            `the boot disk is a ${d.attrs.type ?? 'non-file'} disk (${src?.attrs.dev ?? src?.attrs.volume ?? src?.attrs.name ?? 'no source'}): tend needs an image file; set image by hand`,
          );
          diskSeen = true;
          break;
        }
        diskSeen = true;
        svc.image = file;
        const fmt = child(d, 'driver')?.attrs.type;
        if (fmt && ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx'].includes(fmt)) svc.image_format = fmt;
        break;
      }
      case 'interface': {
        const type = d.attrs.type ?? 'network';
        if (nicSeen) {
          warn(part, `extra ${type} NIC is not imported: tend gives each VM one user-mode NIC (plus the project network)`);
          break;
        }
        nicSeen = true;
        const mac = child(d, 'mac')?.attrs.address;
        if (mac) warn(`${part}/mac`, `MAC address ${mac} is not kept: tend derives each VM's MAC from its name`);
        if (type === 'network') {
          const net = child(d, 'source')?.attrs.network ?? 'default';
          warn(
            part,
            `libvirt network "${net}" (NAT by libvirt) became tend's user-mode networking (NAT by QEMU, guest address 10.0.2.15): reach services through ports: ["HOST:GUEST"]; the guest gets no address on ${net}'s subnet`,
          );
        } else if (type === 'user') {
          // the same as tend's default
        } else if (type === 'bridge') {
          const br = child(d, 'source')?.attrs.bridge ?? '?';
          warn(
            part,
            `bridged NIC on ${br} is not mapped: imported with user-mode networking (port forwards); for a bridge write network: { mode: tap, bridge: ${br} } (needs privileges)`,
          );
        } else if (type === 'direct' || type === 'hostdev' || type === 'vhostuser') {
          warn(part, `${type} NIC is not mapped: imported with user-mode networking`);
        }
        break;
      }
      case 'hostdev': {
        const type = d.attrs.type;
        if (type === 'pci') {
          const addr = pciAddress(child(d, 'source/address'));
          if (!addr) {
            warn(part, 'PCI host device without a readable address is not imported');
            break;
          }
          const rom = child(d, 'rom')?.attrs.file;
          pci.push(rom ? { pci: addr, rom_file: rom } : { pci: addr });
        } else if (type === 'usb') {
          const v = child(d, 'source/vendor')?.attrs.id;
          const p = child(d, 'source/product')?.attrs.id;
          warn(part, `USB host device${v ? ` ${v}:${p ?? '?'}` : ''} is not mapped (add -device usb-host,... to vm.extra_args)`);
        } else {
          warn(part, `${type ?? 'unknown'} host device is not mapped`);
        }
        break;
      }
      case 'video': {
        const m = child(d, 'model')?.attrs.type ?? 'vga';
        const v = VIDEO_MODELS[m];
        if (!v) warn(part, `video model ${m} has no tend equivalent: imported with tend's default (vga)`);
        else if (svc.vm.video) warn(part, `extra video device ${m} is not imported: tend gives a VM one`);
        else svc.vm.video = v;
        break;
      }
      case 'graphics': {
        const t = d.attrs.type ?? '?';
        if (t !== 'vnc' && t !== 'spice') {
          if (t !== 'none') warn(part, `${t} graphics are not mapped: tend offers vm.graphics vnc or spice`);
          break;
        }
        svc.vm.graphics ??= t;
        const listen = d.attrs.listen ?? child(d, 'listen')?.attrs.address;
        const port = d.attrs.port && d.attrs.port !== '-1' ? d.attrs.port : undefined;
        if ((listen && listen !== '127.0.0.1' && listen !== 'localhost') || port) {
          warn(
            part,
            `${t} display${listen ? ` on ${listen}` : ''}${port ? ` port ${port}` : ''} became vm.graphics: ${t} on 127.0.0.1 at a port tend picks (shown in tend ps)`,
          );
        }
        break;
      }
      case 'redirdev':
        warn(part, 'USB redirection is not mapped');
        break;
      case 'filesystem': {
        const dir = child(d, 'source')?.attrs.dir;
        const tag = child(d, 'target')?.attrs.dir;
        warn(
          part,
          `shared folder${dir ? ` ${dir}` : ''}${tag ? ` (tag ${tag})` : ''} is not mapped: write volumes: ["${dir ?? './folder'}:/mount/point"]`,
        );
        break;
      }
      default:
        if (!SILENT_DEVICES.has(d.name)) warn(part, `<${d.name}> has no tend equivalent and is not imported`);
    }
  }
  if (!diskSeen) warn('devices', 'no boot disk: set image by hand (a catalog name such as debian:12, a URL or a path)');
  if (pci.length > 0) svc.devices = pci;

  const extra: string[] = [];
  for (const cl of dom.children.filter((c) => c.name.endsWith(':commandline') || c.name === 'commandline')) {
    for (const a of cl.children) if (a.name.endsWith('arg') && a.attrs.value !== undefined) extra.push(a.attrs.value);
  }
  if (extra.length > 0) {
    svc.vm.extra_args = extra;
    warn('qemu:commandline', `passed through as vm.extra_args: ${extra.join(' ')} (check they still make sense)`);
  }

  const result = { name, rawName, service: svc, warnings };
  return { ...result, yaml: projectYaml(name, [result]) };
}

/** One tend.yaml holding these imported domains as services, their warnings as comments at the top. */
export function projectYaml(project: string, domains: Omit<ImportResult, 'yaml'>[]): string {
  const services: Record<string, unknown> = {};
  for (const d of domains)
    services[d.name] = { ...(d.service.image ? { image: d.service.image } : { image: 'debian:12' }), ...rest(d.service) };
  const many = domains.length > 1;
  const header = [`# Imported by tend from the libvirt domain${many ? 's' : ''} ${domains.map((d) => `"${d.rawName}"`).join(', ')}.`];
  const all = domains.flatMap((d) => d.warnings.map((w) => `#   ${many ? `${d.name}: ` : ''}${w.part}: ${w.message}`));
  if (all.length > 0) header.push('# Not imported as is (review before `tend up`):', ...all);
  return `${header.join('\n')}\n${stringify(escapeDollars({ name: project, services }), { lineWidth: 0 })}`;
}

function rest(svc: ImportedService): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (svc.image_format) out.image_format = svc.image_format;
  if (Object.keys(svc.vm).length > 0) out.vm = svc.vm;
  if (svc.firmware) out.firmware = svc.firmware;
  if (svc.devices) out.devices = svc.devices;
  return out;
}
