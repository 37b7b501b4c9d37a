/** The NoCloud seed ISO (label `cidata`) of a VM, written atomically. */
import { stringify } from 'yaml';
import type { VmSpec } from '../../schemas/model.js';
import { writeFileAtomic } from '../state/atomic.js';
import { renderMetaData, renderUserData } from './cloud-config.js';
import { buildIso } from './iso9660.js';
import type { ProjectNetMember } from '../net/project-net.js';
import { renderNetworkConfig, renderTapNetworkConfig } from './network-config.js';

export const SEED_LABEL = 'cidata';

export function seedFiles(
  vm: VmSpec,
  opts: {
    instanceId: string;
    publicKey: string;
    user: string;
    net?: ProjectNetMember | null;
    /** a warm TAP VM's MAC: it has the management NIC (src/net/tap-mgmt.ts) */
    tapMgmtMac?: string | null;
    /** the guest's SSH host key, private (src/ssh/host-key.ts); null: the guest makes its own */
    hostKey?: string | null;
  },
): Record<string, string> {
  const files: Record<string, string> = {
    'user-data': renderUserData(vm, { user: opts.user, publicKey: opts.publicKey, net: opts.net ?? null, hostKey: opts.hostKey ?? null }),
    'meta-data': renderMetaData(vm, opts.instanceId),
  };
  // a second NIC (the project network): pin DHCP to the user-mode NIC, a static address on the other;
  // the file's own network-config (vms.yml cloud_init.network_config) wins, as written
  if (vm.cloudInit?.networkConfig) files['network-config'] = stringify(vm.cloudInit.networkConfig, { lineWidth: 0, version: '1.1' });
  else if (opts.net) files['network-config'] = renderNetworkConfig(opts.net);
  else if (opts.tapMgmtMac) files['network-config'] = renderTapNetworkConfig(opts.tapMgmtMac);
  return files;
}

export async function writeSeed(vm: VmSpec, opts: { isoPath: string } & Parameters<typeof seedFiles>[1]): Promise<void> {
  await writeFileAtomic(opts.isoPath, buildIso(SEED_LABEL, seedFiles(vm, opts)));
}
