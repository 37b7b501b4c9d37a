/**
 * Named volumes and host folders of a warm clone, plugged in after its restore (issue 15 §2,
 * docs/warm.md). A template never holds a volume (its memory would know the volume's file system),
 * so a clone restores the template's memory on an argv without its volumes and host folders
 * (buildArgv's `mountsLater`), then gets each one:
 *   - named volume: QMP `blockdev-add` (its qcow2) + `device_add virtio-blk-pci` with its serial,
 *   - host folder: `chardev-add` (the socket its virtiofsd, started before QEMU, listens on) +
 *     `device_add vhost-user-fs-pci` with its tag (the clone's RAM is already the shared memfd),
 * each on one of the spare PCIe root ports a warm q35 VM has (pcie.0 itself takes no hot-plug).
 * Then the guest mounts them over SSH with the very snippets the seed's bootcmd runs at every boot
 * (src/seed/volumes.ts: a volume without a file system is formatted, as at a cold boot). A later
 * cold boot has them in its argv, as any VM. Pure functions here; src/qemu/plug-mounts.ts runs them.
 */
import type { VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { hostFolders, shq, volumeBootcmd, volumeSerial } from '../seed/volumes.js';
import type { HostFolderShare } from './volumes.js';

/** Spare root ports of a warm q35 VM: at most this many volumes and host folders per clone. */
export const HOTPLUG_PORTS = 4;
/** Their PCI slot on pcie.0 (functions 0..3): below the named volumes' slots (0x1e down to 0x11). */
export const HOTPLUG_SLOT = 0x10;

export const isQ35 = (machine: string): boolean => /^(pc-)?q35(-|$)/.test(machine);

/** The spare PCIe root ports (hot-plug slots) of a warm q35 VM; none for others. */
export function hotplugPortArgs(vm: VmSpec): string[] {
  if (!vm.warm || !isQ35(vm.machine)) return [];
  const a: string[] = [];
  for (let i = 0; i < HOTPLUG_PORTS; i++) {
    const addr = `0x${HOTPLUG_SLOT.toString(16)}.${i}${i === 0 ? ',multifunction=on' : ''}`;
    a.push('-device', `pcie-root-port,id=tend-hp${i},bus=pcie.0,chassis=${0xe0 + i},addr=${addr}`);
  }
  return a;
}

/** Why a clone of `vm` could not get its volumes and host folders plugged in (null: it can, or has none). */
export function hotplugIneligible(vm: VmSpec): string | null {
  if (vm.volumes.length === 0) return null;
  if (!isQ35(vm.machine)) return `its volumes would be hot-plugged, which tend does on q35 machines only (not ${vm.machine})`;
  if (vm.volumes.length > HOTPLUG_PORTS)
    return `it has more than ${HOTPLUG_PORTS} volumes and host folders (a clone hot-plugs at most ${HOTPLUG_PORTS})`;
  return null;
}

/**
 * True when `argv` (what a QEMU of `vm` runs with) lacks the devices of its volumes and host
 * folders: a warm clone's, which got them plugged in after its restore.
 */
export function mountsPluggedIn(vm: VmSpec, argv: readonly string[]): boolean {
  if (vm.volumes.length === 0) return false;
  return !argv.some((a) => a.startsWith('if=none,id=vol-') || a.startsWith('vhost-user-fs-pci,'));
}

export interface QmpCommand {
  execute: string;
  arguments: Record<string, unknown>;
}

/** The QMP commands that plug a clone's volumes and host folders in, in spec order, one root port each. */
export function hotplugCommands(vm: VmSpec, volumes: Record<string, string>, shares: readonly HostFolderShare[]): QmpCommand[] {
  const cmds: QmpCommand[] = [];
  const tags = new Map(hostFolders(vm).map((h) => [h.mount, h.tag]));
  vm.volumes.forEach((m, port) => {
    const bus = `tend-hp${port}`;
    if (m.kind === 'named') {
      const path = volumes[m.name];
      if (!path) throw new BackendError('HotplugFailed', `${vm.name}: no path for volume ${m.name}`);
      const node = `vol-${m.name}`;
      cmds.push({
        execute: 'blockdev-add',
        arguments: {
          driver: 'qcow2',
          'node-name': node,
          'read-only': m.readOnly,
          file: { driver: 'file', filename: path, 'read-only': m.readOnly },
        },
      });
      cmds.push({
        execute: 'device_add',
        arguments: { driver: 'virtio-blk-pci', id: `${node}-dev`, drive: node, serial: volumeSerial(m.name), bus },
      });
    } else {
      const tag = tags.get(m) as string;
      const share = shares.find((s) => s.tag === tag);
      if (!share) throw new BackendError('HotplugFailed', `${vm.name}: no virtiofsd socket for host folder ${m.source}`);
      const id = `vfs-${tag}`;
      cmds.push({
        execute: 'chardev-add',
        arguments: { id, backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: share.socket } }, server: false } } },
      });
      cmds.push({ execute: 'device_add', arguments: { driver: 'vhost-user-fs-pci', id: `${id}-dev`, chardev: id, tag, bus } });
    }
  });
  return cmds;
}

/**
 * The guest side, run as root: the bootcmd snippets, again each second until every target is a
 * mount point (a hot-plugged device shows up a moment later), for up to `tries` seconds; exit 1
 * naming what is not mounted.
 */
export function guestMountScript(vm: VmSpec, tries = 30): string {
  const targets = vm.volumes.map((m) => shq(m.target)).join(' ');
  return [
    'i=0',
    'while :; do',
    ...volumeBootcmd(vm),
    `  ok=1; for t in ${targets}; do mountpoint -q "$t" || ok=0; done`,
    '  [ $ok = 1 ] && exit 0',
    `  i=$((i+1)); [ $i -ge ${tries} ] && break`,
    '  sleep 1',
    'done',
    `for t in ${targets}; do mountpoint -q "$t" || echo "not mounted: $t" >&2; done`,
    'exit 1',
  ].join('\n');
}
