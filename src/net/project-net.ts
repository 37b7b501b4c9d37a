/**
 * The project network: a private layer-2 segment shared by the VMs of one project, next to each
 * VM's user-mode NIC (which keeps carrying outbound traffic, SSH and port forwards). No root
 * and no bridge: every VM's second NIC joins a UDP multicast group on the host's loopback
 * (QEMU `-netdev socket,mcast=...,localaddr=127.0.0.1`). The group and port are derived from a
 * hash of the project's state folder, so two projects land on different segments and cannot
 * reach each other; inside, every VM gets a static address on PROJECT_SUBNET in a stable,
 * persisted order, and /etc/hosts entries for every instance and service name.
 *
 * Pure: no fs, no process (src/qemu/project-net.ts persists the assignment).
 */
import { createHash } from 'node:crypto';
import type { Project } from '../../schemas/model.js';

/** The private /24 every project network uses (isolation comes from the multicast group). */
export const PROJECT_SUBNET = '10.213.0';
export const PROJECT_PREFIX = 24;
/** Host part of the first VM's address (.1-.9 are left free). */
export const FIRST_HOST = 10;
export const LAST_HOST = 254;

export interface ProjectNetSegment {
  /** multicast group, 239.x.y.z (administratively scoped) */
  group: string;
  port: number;
}

export interface ProjectNetMember {
  segment: ProjectNetSegment;
  /** this VM's project-network MAC (stable per project and VM) */
  mac: string;
  /** this VM's address, e.g. 10.213.0.10 */
  address: string;
  prefix: number;
  /** every VM of the project: address and the names it answers to (instance, then service) */
  hosts: { address: string; names: string[] }[];
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Multicast group and UDP port of a project's segment, from its state folder. */
export function projectSegment(projDir: string): ProjectNetSegment {
  const h = digest(`tend-net:${projDir}`);
  return {
    group: `239.${(h[0] % 254) + 1}.${h[1]}.${(h[2] % 254) + 1}`,
    port: 20000 + (h.readUInt16BE(3) % 30000),
  };
}

/** A stable, unicast, locally administered MAC for a VM's project NIC. */
export function projectMac(projDir: string, vm: string): string {
  const h = digest(`tend-mac:${projDir}:${vm}`);
  return ['52', '54', '7e', h[0], h[1], h[2]].map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':');
}

/**
 * Host numbers per VM: previous assignments are kept (so addresses never move while a VM
 * exists); new VMs get the lowest free number in `names` order; VMs not in `names` are dropped.
 */
export function assignAddresses(names: readonly string[], previous: Readonly<Record<string, number>> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  const used = new Set<number>();
  for (const n of names) {
    const p = previous[n];
    if (Number.isInteger(p) && p >= FIRST_HOST && p <= LAST_HOST && !used.has(p)) {
      out[n] = p;
      used.add(p);
    }
  }
  let next = FIRST_HOST;
  for (const n of names) {
    if (out[n] !== undefined) continue;
    while (used.has(next)) next++;
    if (next > LAST_HOST) throw new Error(`the project network has room for ${LAST_HOST - FIRST_HOST + 1} VMs`);
    out[n] = next;
    used.add(next);
  }
  return out;
}

/** Whether the project gets a project network: two or more VMs with user-mode networking. */
export function wantsProjectNet(project: Project): boolean {
  return project.vms.filter((v) => v.network.mode === 'user').length >= 2;
}

/** The member record of one VM, given the project's address assignment. Null when it has none. */
export function projectNetMember(
  project: Project,
  projDir: string,
  vm: string,
  assignment: Readonly<Record<string, number>>,
): ProjectNetMember | null {
  if (!wantsProjectNet(project)) return null;
  const spec = project.vms.find((v) => v.name === vm);
  if (!spec || spec.network.mode !== 'user' || assignment[vm] === undefined) return null;
  const hosts: ProjectNetMember['hosts'] = [];
  for (const v of project.vms) {
    if (v.network.mode !== 'user' || assignment[v.name] === undefined) continue;
    const names = [v.name];
    if (v.service !== v.name) names.push(v.service);
    hosts.push({ address: `${PROJECT_SUBNET}.${assignment[v.name]}`, names });
  }
  return {
    segment: projectSegment(projDir),
    mac: projectMac(projDir, vm),
    address: `${PROJECT_SUBNET}.${assignment[vm]}`,
    prefix: PROJECT_PREFIX,
    hosts,
  };
}
