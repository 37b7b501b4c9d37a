/**
 * A NIC's link, up or down, over QMP `set_link` (by its netdev's id: QEMU then sets the NIC's
 * link too and the guest sees the carrier change). A restored warm clone whose NIC would answer
 * with the template's MAC and address keeps its link down until the identity step made them its
 * own (src/qemu/clone.ts): frames either way are dropped by QEMU meanwhile.
 */
import { QmpClient } from './qmp.js';

/** The netdev id of a VM's main NIC (src/qemu/argv.ts): user-mode or TAP. */
export const TAP_NETDEV = 'n0';

export async function setNicLink(qmp: QmpClient, netdev: string, up: boolean): Promise<void> {
  await qmp.execute('set_link', { name: netdev, up }, { timeoutMs: 5000 });
}

/** The same on a new connection to the QMP socket `qmpPath`. */
export async function setNicLinkAt(qmpPath: string, netdev: string, up: boolean): Promise<void> {
  const qmp = await QmpClient.connect(qmpPath, { timeoutMs: 2000 });
  try {
    await setNicLink(qmp, netdev, up);
  } finally {
    qmp.close();
  }
}
