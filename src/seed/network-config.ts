/**
 * Guest side of the project network (src/net/project-net.ts):
 *
 * - `renderNetworkConfig`: a NoCloud network-config (version 2) that pins DHCP to the user-mode
 *   NIC (QEMU gives the first NIC without an explicit MAC 52:54:00:12:34:56) and gives the
 *   project NIC, matched by its MAC, its static address. Without it cloud-init's fallback
 *   could pick either NIC for DHCP. cloud-init applies it on the instance's first boot.
 * - `projectNetBootcmd`: a bootcmd snippet (every boot) that (re)applies the static address to
 *   the NIC with the project MAC, so VMs created before the network existed get it too, and
 *   writes a marked block of /etc/hosts (and of cloud-init's hosts templates, which it renders
 *   /etc/hosts from when manage_etc_hosts is on) with every instance and service name.
 *
 * Pure string functions.
 */
import { stringify } from 'yaml';
import type { ProjectNetMember } from '../net/project-net.js';
import { shq } from './volumes.js';
import { TAP_MGMT_ADDRESS, TAP_MGMT_MAC } from '../net/tap-mgmt.js';

/** The MAC QEMU gives the first NIC created without one (the user-mode NIC of argv.ts). */
export const QEMU_FIRST_DEFAULT_MAC = '52:54:00:12:34:56';
export const HOSTS_BEGIN = '# BEGIN tend project network';
export const HOSTS_END = '# END tend project network';

export function renderNetworkConfig(net: ProjectNetMember, userMac: string = QEMU_FIRST_DEFAULT_MAC): string {
  const doc = {
    version: 2,
    ethernets: {
      // no set-name: cloud-init keeps the kernel's names (it looks each NIC up by its MAC)
      user0: { match: { macaddress: userMac }, dhcp4: true },
      project0: { match: { macaddress: net.mac }, dhcp4: false, addresses: [`${net.address}/${net.prefix}`] },
    },
  };
  // cloud-init reads YAML 1.1 (PyYAML): unquoted, 52:54:00:12:34:56 is a base-60 integer there
  return stringify(doc, { lineWidth: 0, version: '1.1' });
}

/**
 * A warm TAP VM's network-config (src/net/tap-mgmt.ts): DHCP on the TAP NIC (matched by the VM's
 * MAC), the management NIC's static address without a gateway. Without it cloud-init's fallback
 * could pick either NIC for DHCP.
 */
export function renderTapNetworkConfig(tapMac: string): string {
  const doc = {
    version: 2,
    ethernets: {
      tap0: { match: { macaddress: tapMac }, dhcp4: true },
      mgmt0: { match: { macaddress: TAP_MGMT_MAC }, dhcp4: false, addresses: [TAP_MGMT_ADDRESS] },
    },
  };
  return stringify(doc, { lineWidth: 0, version: '1.1' });
}

/** /etc/hosts lines of the project network, one per VM. */
export function hostsLines(net: ProjectNetMember): string[] {
  return net.hosts.map((h) => `${h.address} ${h.names.join(' ')}`);
}

/**
 * Shell lines that put `net`'s project block in /etc/hosts and in cloud-init's hosts templates
 * (with manage_etc_hosts it re-renders /etc/hosts from them after bootcmd, and the block must
 * survive that), in place of an older block; each line prefixed with `indent`.
 */
export function hostsBlockScript(net: ProjectNetMember, indent = ''): string[] {
  const block = [HOSTS_BEGIN, ...hostsLines(net), HOSTS_END].join('\n');
  return [
    'for f in /etc/hosts /etc/cloud/templates/hosts.*.tmpl; do',
    '  [ -f "$f" ] || continue',
    `  sed -i '/^${HOSTS_BEGIN}$/,/^${HOSTS_END}$/d' "$f"`,
    `  printf '%s\\n' ${shq(block)} >> "$f"`,
    'done',
  ].map((l) => indent + l);
}

export function projectNetBootcmd(net: ProjectNetMember): string {
  return [
    '(',
    `  mac=${shq(net.mac)}; addr=${shq(`${net.address}/${net.prefix}`)}; dev=`,
    '  for i in /sys/class/net/*; do [ "$(cat "$i/address" 2>/dev/null)" = "$mac" ] && dev=$(basename "$i"); done',
    '  if [ -n "$dev" ]; then ip link set "$dev" up; ip addr replace "$addr" dev "$dev"; else echo "tend-net: no NIC with MAC $mac" >&2; fi',
    ...hostsBlockScript(net, '  '),
    ')',
  ].join('\n');
}
