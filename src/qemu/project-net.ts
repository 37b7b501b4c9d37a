/**
 * Host side of the project network (src/net/project-net.ts): the persisted address assignment
 * (`network.json` in the project's state folder) and the QEMU arguments of the second NIC.
 */
import { join } from 'node:path';
import type { Project } from '../../schemas/model.js';
import { assignAddresses, projectNetMember, wantsProjectNet, type ProjectNetMember } from '../net/project-net.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { validateProjectNetRecord } from '../state/validators.generated.js';
import { PROJECT_FILES } from '../state/paths.js';

/** The assignment file (instance name -> host number); a project-level state file. */
export const PROJECT_NET_FILE = PROJECT_FILES.network;

/** network.json: VM name → its host number on the project segment. */
export const projectNetRecordSchema = {
  $id: 'tend:state/network',
  type: 'object',
  required: ['addresses'],
  properties: { addresses: { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 65535 } } },
} as const;

export function projectNetFile(projDir: string): string {
  return join(projDir, PROJECT_NET_FILE);
}

/**
 * The project-network member record of `vm`, assigning and persisting addresses as needed.
 * Deterministic for a given project and previous record, so concurrent prepares of several VMs
 * write the same file. `existing`: names of VMs that still have state (orphans keep their address).
 */
export async function ensureProjectNet(
  project: Project,
  projDir: string,
  vm: string,
  existing: readonly string[] = [],
): Promise<ProjectNetMember | null> {
  if (!wantsProjectNet(project)) return null;
  const path = projectNetFile(projDir);
  // a damaged record is rebuilt: addresses are assigned again (deterministically, by name)
  const prev = (await readJson<{ addresses: Record<string, number> }>(path, validateProjectNetRecord))?.addresses ?? {};
  const names = [
    ...project.vms.filter((v) => v.network.mode === 'user').map((v) => v.name),
    ...existing.filter((n) => prev[n] !== undefined),
  ];
  const addresses = assignAddresses([...new Set(names)], prev);
  if (JSON.stringify(addresses) !== JSON.stringify(prev)) await writeJsonAtomic(path, { addresses });
  return projectNetMember(project, projDir, vm, addresses);
}

/** The id of the project NIC's netdev (template-key.ts finds the NIC by it). */
export const PROJECT_NETDEV = 'pn0';

/** QEMU arguments of the project NIC: a virtio NIC on the project's multicast segment. */
export function projectNetArgs(net: ProjectNetMember): string[] {
  return [
    '-netdev',
    `socket,id=${PROJECT_NETDEV},mcast=${net.segment.group}:${net.segment.port},localaddr=127.0.0.1`,
    '-device',
    `virtio-net-pci,netdev=${PROJECT_NETDEV},mac=${net.mac}`,
  ];
}
