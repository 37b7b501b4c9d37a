/** UEFI firmware (OVMF) on this host: the code image and a template variable store. */
import { exists } from '../state/atomic.js';

const UEFI_PAIRS: [string, string][] = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
  ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
  ['/usr/share/edk2-ovmf/x64/OVMF_CODE.fd', '/usr/share/edk2-ovmf/x64/OVMF_VARS.fd'],
];
const SECURE_PAIRS: [string, string][] = [
  ['/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'],
  ['/usr/share/OVMF/OVMF_CODE.secboot.fd', '/usr/share/OVMF/OVMF_VARS.ms.fd'],
  ['/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd', '/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd'],
];

/** The first installed (code, vars template) pair for the firmware kind; null if none. */
export async function findOvmf(kind: 'uefi' | 'uefi-secure'): Promise<{ code: string; varsTemplate: string } | null> {
  for (const [code, vars] of kind === 'uefi' ? UEFI_PAIRS : SECURE_PAIRS) {
    if ((await exists(code)) && (await exists(vars))) return { code, varsTemplate: vars };
  }
  return null;
}
