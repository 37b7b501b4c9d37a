/**
 * Host keys: trusted on first use, pinned per VM (FILES.knownHosts in the VM's folder), reset
 * with a new disk. The rule (docs/ssh.md, "Host keys"):
 *   - Nothing is checked while tend waits for readiness: on a first boot cloud-init regenerates
 *     the guest's host keys and restarts sshd, so the key seen then is not the final one.
 *   - Once the guest is ready (cloud-init done), the key it presents is pinned, together with
 *     the disk's instance-id. From then on every tend connection (provisioning, healthcheck,
 *     `tend ssh`) must present a pinned key.
 *   - A pin made for another instance-id (the disk was recreated) is replaced without asking.
 *   - A different key on the same disk is HostKeyChanged: possibly someone in the middle. If you
 *     changed the guest's keys yourself, delete the file the message names.
 * The file is in OpenSSH known_hosts format (lines "ALIAS TYPE BASE64", the instance-id in a
 * comment), so `tend ssh` hands it to the system ssh with HostKeyAlias=ALIAS.
 */
import { readFile } from 'node:fs/promises';
import { BackendError } from '../../schemas/errors.js';
import { writeFileAtomic } from '../state/atomic.js';

export interface HostPin {
  instanceId: string;
  alias: string;
  /** "TYPE BASE64" of each pinned key */
  keys: string[];
}

export type HostKeyVerdict =
  { kind: 'trusted' } | { kind: 'new'; reason: 'first-use' | 'new-disk' } | { kind: 'changed'; pinned: string[] };

/** "TYPE BASE64" for a raw SSH public key blob (string type, then key data). */
export function hostKeyLine(blob: Buffer): string {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown';
  return `${type} ${blob.toString('base64')}`;
}

/** The alias the VM's keys are filed under (also the system ssh's HostKeyAlias). */
export function hostAlias(project: string, vm: string): string {
  return `tend-${project}-${vm}`;
}

/** The pin, or null when there is none or the file is unreadable (treated as no pin). */
export async function readPin(path: string): Promise<HostPin | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  let instanceId: string | null = null;
  let alias = '';
  const keys: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^#\s*instance-id\s+(\S*)$/.exec(line);
    if (m) instanceId = m[1];
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    if (parts.length < 3) continue;
    alias = parts[0];
    keys.push(`${parts[1]} ${parts[2]}`);
  }
  if (instanceId === null || keys.length === 0) return null;
  return { instanceId, alias, keys };
}

export async function writePin(path: string, pin: HostPin): Promise<void> {
  const lines = [
    '# tend: SSH host keys of this VM, pinned on first use after it became ready (docs/ssh.md)',
    `# instance-id ${pin.instanceId}`,
    ...pin.keys.map((k) => `${pin.alias} ${k}`),
    '',
  ];
  await writeFileAtomic(path, lines.join('\n'));
}

/** Pure decision: is `key` (TYPE BASE64) acceptable for the disk `instanceId` given `pin`? */
export function judgeHostKey(pin: HostPin | null, instanceId: string, key: string): HostKeyVerdict {
  if (!pin) return { kind: 'new', reason: 'first-use' };
  if (pin.instanceId !== instanceId) return { kind: 'new', reason: 'new-disk' };
  return pin.keys.includes(key) ? { kind: 'trusted' } : { kind: 'changed', pinned: pin.keys };
}

export interface HostKeyCheck {
  /** give to sshConnect({ hostVerifier }) */
  verifier: (key: Buffer) => boolean;
  /** after a connection attempt: throws HostKeyChanged if the key was refused, else pins a new key */
  settle(): Promise<void>;
}

/**
 * A verifier for one connection, with the pin read now (the verifier itself runs synchronously
 * during the handshake). `pinNew` false: a key is accepted without pinning when there is no
 * valid pin yet (used before the guest is ready); an existing pin is still enforced.
 */
export async function hostKeyCheck(
  path: string,
  instanceId: string,
  alias: string,
  opts: { pinNew: boolean; where: string },
): Promise<HostKeyCheck> {
  const pin = await readPin(path);
  let seen: string | null = null;
  let verdict: HostKeyVerdict | null = null;
  return {
    verifier: (blob) => {
      seen = hostKeyLine(blob);
      verdict = judgeHostKey(pin, instanceId, seen);
      return verdict.kind !== 'changed';
    },
    async settle() {
      const v = verdict as HostKeyVerdict | null;
      if (v?.kind === 'changed') {
        throw new BackendError(
          'HostKeyChanged',
          `the SSH host key of ${opts.where} changed on the same disk (instance-id ${instanceId}): someone may be in the middle. ` +
            `Pinned ${v.pinned.map(short).join(', ')}, offered ${short(seen ?? '')}. ` +
            `If you changed the guest's host keys yourself, delete ${path} and retry.`,
        );
      }
      if (v?.kind === 'new' && opts.pinNew && seen) await writePin(path, { instanceId, alias, keys: [seen] });
    },
  };
}

function short(key: string): string {
  const [type, b64] = key.split(' ');
  return `${type} …${(b64 ?? '').slice(-12)}`;
}
