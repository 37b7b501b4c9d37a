/**
 * What defines a warm template (issue 15 §2, docs/warm.md), as pure functions:
 *  - `templateKey`: the image (its content identity), the cloud-init seed minus identity (the
 *    hostname; instance-id and tend's login key are per VM and never in the key), the SSH user and
 *    key file, the disk size and the hardware (CPUs, memory, machine, CPU model, firmware, video,
 *    accelerator, extra args). No provision step: a template is the state right after the first
 *    boot of a fresh disk reached Ready, before any step ran, so a clone runs all of its own.
 *  - `cloneIneligible`: why a VM cannot be (or make) a template: state that lives outside its
 *    disk overlay (named volumes, host folders, PCI devices, UEFI variables) or a NIC whose
 *    address is per VM (TAP, the project network's second NIC).
 *  - `portableArgv`: a QEMU argv with what legitimately differs per clone masked (the VM's name,
 *    its files and sockets, host forwards); everything else (machine, CPU, memory, devices, MACs)
 *    must be equal for a template's memory to be restored into it.
 */
import { createHash } from 'node:crypto';
import type { VmSpec } from '../../schemas/model.js';
import { withoutHostForwards } from './saved-state.js';

/** Bump when the template's content or key changes meaning: old templates are then never used. */
const KEY_VERSION = 1;

export function templateKey(vm: VmSpec, imageId: string): string {
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
    },
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** Why `vm` cannot be cloned or be a template (null: it can). `projectNet`: it has the project's second NIC. */
export function cloneIneligible(vm: VmSpec, projectNet: boolean): string | null {
  if (vm.backend === 'libvirt') return 'the libvirt backend has no warm clones yet';
  if (vm.network.mode !== 'user') return `its ${vm.network.mode} network gives each VM its own MAC and address`;
  if (projectNet) return "it is on the project network, where each VM has its own MAC and address (a clone's would be the template's)";
  if (vm.volumes.length > 0) return 'it has volumes, whose content is not in the template';
  if (vm.devices.length > 0) return 'it has passed-through PCI devices, which cannot be migrated';
  if (vm.firmware !== 'bios') return 'its UEFI variable store is not part of the template yet';
  return null;
}

const MASKED_FLAGS = new Set(['-name', '-pidfile', '-qmp', '-chardev']);

/** `argv` with what differs per clone masked: compare two of these whole (saved-state.ts argvDifference). */
export function portableArgv(argv: readonly string[]): string[] {
  // host forwards too: a clone has its own host ports (the guest side is the same sshd)
  return withoutHostForwards(argv).map((a, i) => {
    const prev = argv[i - 1];
    if (prev !== undefined && MASKED_FLAGS.has(prev)) return '*';
    if (prev === '-drive') return a.replace(/(^|,)file=(?:[^,]|,,)*/, '$1file=*');
    return a;
  });
}
