/**
 * TAP networking: the VM's NIC on a host bridge, for hosts where tend has the privileges.
 *
 * - with a bridge (`network "tap" { bridge "br0" }` / `network: { mode: tap, bridge: br0 }`):
 *   `-netdev bridge,br=br0` — QEMU's setuid qemu-bridge-helper creates the TAP device and
 *   attaches it (the bridge must be allowed in /etc/qemu/bridge.conf: `allow br0`);
 * - with a TAP device made beforehand (`ifname`): `-netdev tap,ifname=...,script=no`.
 *
 * The NIC gets a stable MAC (from the project and VM) so the guest's address can be found in
 * the host's neighbour table or the bridge's dnsmasq leases (src/net/guest-ip.ts). No SSH port
 * forward exists in this mode: SSH goes to that address.
 */
import { createHash } from 'node:crypto';
import type { VmSpec } from '../../schemas/model.js';

export const BRIDGE_HELPER_CANDIDATES = ['/usr/lib/qemu/qemu-bridge-helper', '/usr/libexec/qemu-bridge-helper'];

/** Linux interface names are at most 15 bytes: "tt-" + 12 hex of the project and VM. */
export function tapName(projDir: string, vm: string): string {
  return `tt-${createHash('sha256').update(`${projDir}:${vm}`).digest('hex').slice(0, 12)}`;
}

export interface TapOptions {
  mac: string;
  /** an existing TAP device to use instead of the bridge helper */
  ifname?: string;
  /** path of qemu-bridge-helper when not QEMU's default */
  helper?: string;
  /** netdev id (default n0, the first NIC) */
  id?: string;
}

/** QEMU arguments of a TAP NIC. Throws when the VM is not in tap mode. */
export function tapArgs(vm: VmSpec, o: TapOptions): string[] {
  if (vm.network.mode !== 'tap') throw new Error(`${vm.name}: network mode is ${vm.network.mode}, not tap`);
  const id = o.id ?? 'n0';
  const esc = (s: string): string => s.replaceAll(',', ',,');
  let netdev: string;
  if (o.ifname) netdev = `tap,id=${id},ifname=${esc(o.ifname)},script=no,downscript=no`;
  else if (vm.network.bridge) netdev = `bridge,id=${id},br=${esc(vm.network.bridge)}${o.helper ? `,helper=${esc(o.helper)}` : ''}`;
  else throw new Error(`${vm.name}: tap networking needs a bridge or an existing TAP device`);
  return ['-netdev', netdev, '-device', `virtio-net-pci,netdev=${id},mac=${o.mac}`];
}
