/**
 * The management NIC of a warm VM on TAP (issue 15 §2, docs/decisions.md "Clones on TAP"): a
 * second, user-mode NIC whose only use is an SSH forward on 127.0.0.1. A TAP clone's NIC
 * comes back from the template's memory with the template's MAC and DHCP address, which the
 * template's own VM may still have on the bridge, so its link stays down until the identity step
 * gave it the clone's MAC; that step needs a way in that is not the TAP NIC: this one. Isolated
 * (`restrict=on`: nothing leaves through it), a static address and no gateway in the guest (the
 * TAP NIC keeps the default route), no IPv6 (`ipv6=off`: else its router advertisements gave the
 * guest an IPv6 default route into it), the same MAC in every VM (each is alone on its own slirp).
 *
 * Pure: which VMs have it is src/qemu/template-key.ts (hasTapMgmt), the guest side
 * src/seed/network-config.ts, the QEMU side src/qemu/argv.ts.
 */
/** netdev id of the management NIC (the TAP NIC's is n0). */
export const TAP_MGMT_NETDEV = 'tm0';
/** its MAC: the same in every VM, matched by the guest's network-config */
export const TAP_MGMT_MAC = '52:54:00:74:6d:01';
/** the guest's static address on it: QEMU user networking's default guest address (its forwards go there) */
export const TAP_MGMT_ADDRESS = '10.0.2.15/24';

/** The QEMU arguments of the management NIC, SSH forwarded from 127.0.0.1:`sshPort`. */
export function tapMgmtArgs(sshPort: number, guestSshPort: number, sshAddress = '127.0.0.1'): string[] {
  return [
    '-netdev',
    `user,id=${TAP_MGMT_NETDEV},restrict=on,ipv6=off,hostfwd=tcp:${sshAddress}:${sshPort}-:${guestSshPort}`,
    '-device',
    `virtio-net-pci,netdev=${TAP_MGMT_NETDEV},mac=${TAP_MGMT_MAC}`,
  ];
}
