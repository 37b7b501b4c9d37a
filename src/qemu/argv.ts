/**
 * The QEMU command line of a VM: a pure function of the spec, the VM's file paths, the chosen
 * accelerator and the allocated host ports. No fs, no process: everything it needs (firmware
 * paths included) is passed in, so it is unit-tested for fixed host capabilities.
 */
import type { VmSpec } from '../../schemas/model.js';
import type { ProjectNetMember } from '../net/project-net.js';
import { displayArgs } from './display.js';
import { projectNetArgs } from './project-net.js';
import { hostFolderArgs, volumeDeviceArg, type HostFolderShare } from './volumes.js';
import { hotplugPortArgs } from './hotplug.js';
import { tapMgmtArgs } from '../net/tap-mgmt.js';

export type Accel = 'kvm' | 'tcg';

/** Where this VM's files are (all absolute). Sockets come from `socketPath()` (108-byte limit). */
export interface VmPaths {
  disk: string;
  /** null: no seed (cloud-init off) */
  seed: string | null;
  pidfile: string;
  qmp: string;
  /** second QMP monitor for a long-lived event listener (QEMU serves one client per monitor) */
  qmpEvents?: string;
  serial: string;
  consoleLog: string;
  /** named volume name -> its qcow2 path */
  volumes: Record<string, string>;
}

/** UEFI firmware files; null when not installed (then uefi is an error raised by the caller). */
export interface Firmware {
  /** read-only code image (OVMF_CODE*.fd) */
  code: string;
  /** this VM's own writable copy of the variable store */
  vars: string;
  /** true for a Secure Boot build (needs SMM and a secure flash) */
  secure: boolean;
}

/** A host port forward: guest "port/proto" key -> host address and port. */
export interface HostForward {
  guestPort: number;
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
}

export interface ArgvInput {
  vm: VmSpec;
  paths: VmPaths;
  accel: Accel;
  /** forwards for vm.ports, in the same order */
  ports: HostForward[];
  /** host port forwarded to the guest's sshd (user networking only) */
  sshPort: number;
  /** address the SSH forward binds to; default 127.0.0.1 */
  sshAddress?: string;
  /** the project network's NIC (src/qemu/project-net.ts); none when null or absent */
  projectNet?: ProjectNetMember | null;
  /** host folders shared with virtiofs (src/qemu/volumes.ts) */
  hostFolders?: HostFolderShare[];
  /** stable MAC of the TAP NIC (src/net/mac.ts), so the guest's IP can be found by it */
  tapMac?: string;
  /** a warm VM on TAP: the management NIC next to it (src/net/tap-mgmt.ts), SSH forwarded from `sshPort` */
  tapMgmt?: boolean;
  /** required when vm.firmware is uefi / uefi-secure */
  firmware?: Firmware | null;
  /** host port of the VNC/SPICE server on 127.0.0.1; required when vm.graphics is not none */
  graphicsPort?: number;
  /**
   * a warm clone's restore: no volume or host folder device (they are hot-plugged after it,
   * src/qemu/hotplug.ts), but the shared memory host folders need
   */
  mountsLater?: boolean;
}

/** Build the argv (without the binary) for `qemu-system-x86_64`. Never goes through a shell. */
export function buildArgv(input: ArgvInput): string[] {
  const { vm, paths, accel } = input;
  const secure = vm.firmware === 'uefi-secure';
  const a: string[] = [];
  a.push('-name', `${vm.name},process=tend-${vm.name}`);
  a.push('-machine', `${vm.machine},accel=${accel}${secure ? ',smm=on' : ''}`);
  a.push('-cpu', vm.cpuModel ?? (accel === 'kvm' ? 'host' : 'max'));
  a.push('-smp', String(vm.cpus));
  a.push('-m', String(vm.memory));
  a.push('-nodefaults', '-no-user-config');

  if (vm.firmware !== 'bios') {
    const fw = input.firmware;
    if (!fw) throw new Error(`${vm.name}: firmware ${vm.firmware} needs OVMF firmware files`);
    if (secure) a.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${opt(fw.code)}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${opt(fw.vars)}`);
  }

  a.push('-drive', `if=virtio,file=${opt(paths.disk)},format=qcow2,cache=writeback,discard=unmap`);
  if (paths.seed) a.push('-drive', `if=virtio,file=${opt(paths.seed)},format=raw,media=cdrom,readonly=on`);
  for (const v of vm.volumes) {
    if (v.kind !== 'named' || input.mountsLater) continue;
    const p = paths.volumes[v.name];
    if (!p) throw new Error(`${vm.name}: no path for volume ${v.name}`);
    a.push('-drive', `if=none,id=vol-${v.name},file=${opt(p)},format=qcow2${v.readOnly ? ',readonly=on' : ''}`);
    // high PCI slot: the boot disk must stay first in the BIOS boot order (src/qemu/volumes.ts)
    a.push('-device', volumeDeviceArg(vm, v.name));
  }

  a.push(...networkArgs(input));
  if (input.projectNet) a.push(...projectNetArgs(input.projectNet));
  a.push(...hostFolderArgs(vm, input.hostFolders ?? [], !input.mountsLater));
  a.push(...hotplugPortArgs(vm));
  a.push('-device', 'virtio-rng-pci');
  a.push(...displayArgs(vm, input.graphicsPort));
  a.push('-chardev', `socket,id=ser0,path=${opt(paths.serial)},server=on,wait=off,logfile=${opt(paths.consoleLog)},logappend=on`);
  a.push('-serial', 'chardev:ser0');
  a.push('-qmp', `unix:${opt(paths.qmp)},server=on,wait=off`);
  if (paths.qmpEvents) a.push('-qmp', `unix:${opt(paths.qmpEvents)},server=on,wait=off`);
  a.push('-pidfile', paths.pidfile);
  for (const d of vm.devices) {
    a.push('-device', `vfio-pci,host=${d.pci}${d.romFile ? `,romfile=${opt(d.romFile)}` : ''}`);
  }
  a.push(...vm.extraArgs);
  return a;
}

function networkArgs(input: ArgvInput): string[] {
  const { vm } = input;
  switch (vm.network.mode) {
    case 'none':
      return ['-nic', 'none'];
    case 'tap': {
      const netdev = vm.network.bridge ? `bridge,id=n0,br=${opt(vm.network.bridge)}` : 'tap,id=n0,script=no,downscript=no';
      const nic = ['-netdev', netdev, '-device', `virtio-net-pci,netdev=n0${input.tapMac ? `,mac=${input.tapMac}` : ''}`];
      return input.tapMgmt ? [...nic, ...tapMgmtArgs(input.sshPort, vm.ssh.port, input.sshAddress)] : nic;
    }
    case 'user': {
      const fwd = [`hostfwd=tcp:${input.sshAddress ?? '127.0.0.1'}:${input.sshPort}-:${vm.ssh.port}`];
      for (const p of input.ports) fwd.push(`hostfwd=${p.protocol}:${p.hostAddress}:${p.hostPort}-:${p.guestPort}`);
      return ['-netdev', ['user', 'id=n0', ...fwd].join(','), '-device', 'virtio-net-pci,netdev=n0'];
    }
  }
}

/** QEMU option values escape a comma by doubling it. */
function opt(value: string): string {
  return value.replaceAll(',', ',,');
}

/** The accelerator named in a QEMU argv (`-machine ...,accel=X` or `-accel X`), if any. */
export function accelOf(argv: readonly string[]): Accel | null {
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] === '-machine') {
      const m = /(?:^|,)accel=(kvm|tcg)/.exec(argv[i + 1]);
      if (m) return m[1] as Accel;
    }
    if (argv[i] === '-accel' && /^(kvm|tcg)/.test(argv[i + 1])) return argv[i + 1].slice(0, 3) as Accel;
  }
  return null;
}
