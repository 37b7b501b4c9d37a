/**
 * Which user and which private keys `tend ssh` uses, in vmctl's documented order (docs/ssh.md):
 *
 * Keys, every one that exists, in this order (the system ssh offers them in turn; tend's own
 * connections use the first):
 *   1. the key tend generated for the VM (its folder's id_ed25519)
 *   2. --key, else the file's ssh private-key
 *   3. ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa, ~/.ssh/id_rsa
 * User, first match wins: --user, then the file / cloud-init user / image convention / "tend"
 * (src/ssh/user.ts).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { VmSpec } from '../../schemas/model.js';
import { NotFoundError } from '../../schemas/errors.js';
import { FILES } from '../state/paths.js';
import { sshUser } from './user.js';

export type KeySource = 'generated' | 'flag' | 'file' | 'home';

export interface KeyCandidate {
  path: string;
  source: KeySource;
}

export interface ResolveKeysInput {
  /** the VM's state folder */
  vmDir: string;
  /** --key */
  flagKey?: string;
  /** the file's ssh private-key (vm.ssh.privateKey) */
  fileKey?: string | null;
  /** home folder (default: $HOME) */
  home?: string;
  /** file test (tests inject one) */
  exists?: (path: string) => boolean;
  cwd?: string;
}

export const HOME_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;

/** Every candidate key that exists, in resolution order, without duplicates. */
export function resolveSshKeys(i: ResolveKeysInput): KeyCandidate[] {
  const exists = i.exists ?? existsSync;
  const home = i.home ?? process.env.HOME ?? homedir();
  const all: KeyCandidate[] = [{ path: join(i.vmDir, FILES.privateKey), source: 'generated' }];
  if (i.flagKey) all.push({ path: resolve(i.cwd ?? process.cwd(), expandHome(i.flagKey, home)), source: 'flag' });
  else if (i.fileKey) all.push({ path: i.fileKey, source: 'file' });
  for (const k of HOME_KEYS) all.push({ path: join(home, '.ssh', k), source: 'home' });
  const seen = new Set<string>();
  const out: KeyCandidate[] = [];
  for (const c of all) {
    if (seen.has(c.path)) continue;
    seen.add(c.path);
    // a key named explicitly must exist: saying nothing would hide a typo
    if (c.source === 'flag' && !exists(c.path)) throw new NotFoundError('SshKeyNotFound', `--key ${c.path}: no such file`);
    if (exists(c.path)) out.push(c);
  }
  return out;
}

/** The keys, or a NotFoundError listing where tend looked. */
export function requireSshKeys(i: ResolveKeysInput): KeyCandidate[] {
  const keys = resolveSshKeys(i);
  if (keys.length > 0) return keys;
  const home = i.home ?? process.env.HOME ?? homedir();
  const looked = [join(i.vmDir, FILES.privateKey), ...(i.fileKey ? [i.fileKey] : []), ...HOME_KEYS.map((k) => join(home, '.ssh', k))];
  throw new NotFoundError(
    'SshKeyNotFound',
    `no SSH private key found; looked at ${looked.join(', ')}: pass --key PATH or set ssh private-key in the file`,
  );
}

/** --user, else the file / cloud-init / image convention / default. */
export function resolveSshUser(vm: VmSpec, flagUser?: string): string {
  return flagUser && flagUser.trim() !== '' ? flagUser : sshUser(vm);
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p;
}
