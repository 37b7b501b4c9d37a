/**
 * The guest's SSH host key, made by tend with the VM's fresh disk: an ed25519 private key in
 * OpenSSH format, kept in the VM's folder (0600) for the disk's life and handed to cloud-init in
 * the seed (`ssh_keys`, src/seed/cloud-config.ts). cloud-init then writes it, derives its public
 * half and generates no key of its own: under TCG the keys of a default first boot took 2.3-10.6 s
 * (`cloud-init analyze blame`, config-ssh), the most variable part of a boot. A warm clone's
 * identity step gives it the same kind of key (src/qemu/clone.ts). tend still pins what the guest
 * presents (a guest whose cloud-init ignores `ssh_keys` keeps its own keys, as before).
 */
import { writeFileAtomic } from '../state/atomic.js';

/** A new host key for a guest named `hostname`, written to `path` (0600). */
export async function writeHostKey(path: string, hostname: string): Promise<void> {
  // keys.ts (ssh2) is loaded only when a VM is prepared, as for its login key: a converged `tend up` never pays for it
  const { generateKeypair } = await import('./keys.js');
  await writeFileAtomic(path, generateKeypair(`root@${hostname}`).private);
}

/** The private host key at `path`, null when there is none (a disk made before tend made host keys). */
export async function readHostKey(path: string): Promise<string | null> {
  const { readIfExists } = await import('./keys.js');
  return readIfExists(path);
}
