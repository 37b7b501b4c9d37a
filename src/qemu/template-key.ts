/**
 * What defines a warm template (issue 15 §2, docs/warm.md), as pure functions:
 *  - `templateKey`: the image (its content identity), the cloud-init seed minus identity (the
 *    hostname; instance-id and tend's login key are per VM and never in the key), the SSH user and
 *    key file, the disk size and the hardware (CPUs, memory, machine, CPU model, firmware, video,
 *    accelerator, extra args), and whether it has a project NIC (the project network's second
 *    NIC; not its MAC, address or hosts list, which are per VM and per project: a clone makes
 *    them its own, src/qemu/clone.ts). No provision step: a template is the state right after the
 *    first boot of a fresh disk reached Ready, before any step ran, so a clone runs all of its own.
 *  - `cloneIneligible`: why a VM cannot be (or make) a template: state that lives outside its
 *    disk overlay (PCI devices), or on TAP, a network-config of the file's own (tend reaches a
 *    TAP clone through its management NIC, src/qemu/tap-mgmt.ts, which that file would not
 *    configure). Named volumes and host folders are left out of the key: a clone gets them
 *    hot-plugged after its restore (src/qemu/hotplug.ts), and a VM with them never makes a
 *    template (src/qemu/templates.ts). A UEFI guest's variable store is copied into the
 *    template and each clone gets its own copy (src/qemu/templates.ts, clone.ts).
 *  - `portableArgv`: a QEMU argv with what legitimately differs per clone masked (the VM's name,
 *    its files and sockets, host forwards, the project NIC's MAC and segment, the TAP NIC's MAC
 *    and its bridge or TAP device); everything else
 *    (machine, CPU, memory, devices, the user NIC's MAC) must be equal for a template's memory to
 *    be restored into it.
 */
import { createHash } from 'node:crypto';
import type { VmSpec } from '../../schemas/model.js';
import { withoutHostForwards } from './saved-state.js';
import { PROJECT_NETDEV } from './project-net.js';
import { hotplugIneligible } from './hotplug.js';

/** Bump when the template's content or key changes meaning: old templates are then never used. */
const KEY_VERSION = 1;

/**
 * `projectNic`: the VM has the project network's second NIC (src/net/project-net.ts). `scope`:
 * what runs it when not the QEMU backend (`libvirt qemu:///system`: a libvirt domain's state
 * restores only into a libvirt domain of that connection, src/libvirt/templates.ts).
 */
export function templateKey(vm: VmSpec, imageId: string, projectNic: boolean, scope: string | null = null): string {
  const ci = vm.cloudInit === null ? null : { ...vm.cloudInit, hostname: null };
  const parts = {
    v: KEY_VERSION,
    image: imageId,
    imageDigest: vm.imageDigest ?? null,
    cloudInit: ci,
    userData: vm.userDataDigest ?? null,
    ssh: { user: vm.ssh.user, privateKey: vm.ssh.privateKey, port: vm.ssh.port },
    disk: vm.disk,
    hw: {
      cpus: vm.cpus,
      memory: vm.memory,
      machine: vm.machine,
      cpuModel: vm.cpuModel,
      firmware: vm.firmware,
      accel: vm.accel,
      video: vm.video,
      graphics: vm.graphics,
      network: vm.network.mode,
      extraArgs: vm.extraArgs,
      // only when true: the key of a VM without one is what it was before clones had it
      ...(projectNic ? { projectNic: true } : {}),
    },
    // only when not the QEMU backend: QEMU templates keep their keys
    ...(scope !== null ? { scope } : {}),
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/**
 * Why `vm` cannot be cloned or be a template (null: it can). `o.libvirt`: it runs as a local
 * libvirt domain (src/libvirt/clone.ts), where TAP, volumes, host folders and the project network
 * are not made a clone's own yet (the QEMU backend's NIC and hot-plug steps speak to its own QEMU).
 * Without it, a VM pinned to the libvirt backend is asked as one of the QEMU backend: not eligible.
 */
export function cloneIneligible(vm: VmSpec, o: { libvirt?: boolean; projectNic?: boolean } = {}): string | null {
  if (vm.backend === 'libvirt' && !o.libvirt) return 'it runs on the libvirt backend';
  if (vm.network.mode === 'none') return 'it has no network, which the clone step needs';
  if (o.libvirt) {
    if (vm.network.mode !== 'user') return `on the libvirt backend a warm clone has user networking only yet (not ${vm.network.mode})`;
    if (vm.volumes.length > 0) return 'on the libvirt backend a warm clone cannot have volumes or host folders yet';
    if (o.projectNic) return 'on the libvirt backend a warm clone cannot be on the project network yet';
  }
  if (vm.network.mode === 'tap' && vm.cloudInit === null)
    return "without cloud-init nothing configures the management NIC through which tend makes a TAP clone's identity its own";
  if (vm.network.mode === 'tap' && vm.cloudInit?.networkConfig)
    return "its own cloud-init network-config leaves out the management NIC through which tend makes a TAP clone's identity its own";
  const hotplug = hotplugIneligible(vm);
  if (hotplug) return hotplug;
  if (vm.devices.length > 0) return 'it has passed-through PCI devices, which cannot be migrated';
  return null;
}

/** A warm VM on TAP that can keep or use templates has the management NIC (src/net/tap-mgmt.ts). */
export function hasTapMgmt(vm: VmSpec): boolean {
  return vm.warm === true && vm.network.mode === 'tap' && cloneIneligible(vm) === null;
}

const MASKED_FLAGS = new Set(['-name', '-pidfile', '-qmp', '-chardev']);

/**
 * `argv` with what differs per clone masked: compare two of these whole (saved-state.ts
 * argvDifference). The project NIC (src/qemu/project-net.ts, netdev `pn0`): its MAC is the
 * VM's own (virtio-net migrates the template's in its state; the clone's identity step sets its
 * own, clone.ts) and its multicast segment is its project's (host side only, nothing migrated).
 */
export function portableArgv(argv: readonly string[]): string[] {
  // host forwards too: a clone has its own host ports (the guest side is the same sshd)
  return withoutHostForwards(argv).map((a, i) => {
    const prev = argv[i - 1];
    if (prev !== undefined && MASKED_FLAGS.has(prev)) return '*';
    if (prev === '-drive') return a.replace(/(^|,)file=(?:[^,]|,,)*/, '$1file=*');
    if (prev === '-netdev' && a.startsWith(`socket,id=${PROJECT_NETDEV},`)) return a.replace(/(^|,)mcast=[^,]*/, '$1mcast=*');
    if (prev === '-device' && a.split(',').includes(`netdev=${PROJECT_NETDEV}`)) return a.replace(/(^|,)mac=[^,]*/, '$1mac=*');
    // the TAP NIC (argv.ts, netdev n0): its MAC is the VM's own (tapMac), set in the guest by the
    // identity step like the project NIC's; its bridge or TAP device is host side only
    if (prev === '-netdev' && /^(bridge|tap),id=n0(,|$)/.test(a)) return a.replace(/(^|,)(br|ifname)=(?:[^,]|,,)*/g, '$1$2=*');
    if (prev === '-device' && a.split(',').includes('netdev=n0')) return a.replace(/(^|,)mac=[^,]*/, '$1mac=*');
    return a;
  });
}

/** The project NIC's MAC in a QEMU argv (the template's, in its record), or null when it has none. */
export function projectNicMac(argv: readonly string[]): string | null {
  return nicMac(argv, PROJECT_NETDEV);
}

/** The `mac=` of the NIC on netdev `netdev` in a QEMU argv, or null (no such NIC, or QEMU's default MAC). */
export function nicMac(argv: readonly string[], netdev: string): string | null {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (argv[i - 1] !== '-device' || !a.split(',').includes(`netdev=${netdev}`)) continue;
    const m = /(?:^|,)mac=([^,]+)/.exec(a);
    if (m) return m[1]!;
  }
  return null;
}
