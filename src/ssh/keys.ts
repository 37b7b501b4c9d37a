/**
 * The per-VM SSH key pair: ed25519, OpenSSH format (read by ssh2 and by the system `ssh`),
 * generated once into the VM's folder (private key 0600) and reused afterwards.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import ssh2 from 'ssh2';
import { BackendError } from '../../schemas/errors.js';
import { writeFileAtomic } from '../state/atomic.js';
import { FILES } from '../state/paths.js';

export interface Keypair {
  privateKeyPath: string;
  /** "ssh-ed25519 AAAA... comment" */
  publicKey: string;
}

/** A text file's content, null when it does not exist. */
export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The OpenSSH public key line for a private key (throws BackendError when unreadable). */
export function publicKeyOf(privateKey: string, comment: string): string {
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) {
    throw new BackendError('BadSshKey', `cannot read the private key: ${key instanceof Error ? key.message : 'no key'}`);
  }
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}`;
}

/**
 * A new ed25519 pair in OpenSSH format. ssh2's generator strips leading zero bytes from the public
 * key, so about 1 pair in 256 cannot be parsed again (mscdex/ssh2#1513): such a pair is discarded
 * and another generated.
 */
export function generateKeypair(comment: string): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}

export async function ensureKeypair(vmDir: string): Promise<Keypair> {
  const privateKeyPath = join(vmDir, FILES.privateKey);
  const publicKeyPath = join(vmDir, FILES.publicKey);
  const comment = `tend@${basename(vmDir)}`;
  const priv = await readIfExists(privateKeyPath);
  if (priv !== null) {
    const pub = (await readIfExists(publicKeyPath))?.trim();
    if (pub) return { privateKeyPath, publicKey: pub };
    const derived = publicKeyOf(priv, comment);
    await writeFileAtomic(publicKeyPath, derived + '\n');
    return { privateKeyPath, publicKey: derived };
  }
  const pair = generateKeypair(comment);
  await writeFileAtomic(privateKeyPath, pair.private);
  const publicKey = pair.public.trim();
  await writeFileAtomic(publicKeyPath, publicKey + '\n');
  return { privateKeyPath, publicKey };
}
