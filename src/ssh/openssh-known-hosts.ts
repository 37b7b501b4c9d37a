/**
 * Checking a host's key the way OpenSSH does, against OpenSSH's own known_hosts files, for the
 * hosts tend connects to that are not its guests (a remote libvirt host: src/ssh/jump.ts).
 * Guests' keys are pinned per VM instead (src/ssh/known-hosts.ts).
 *
 * Written here (≈80 lines) because no maintained npm package reads known_hosts with hashed
 * names, `[host]:port`, negation, wildcards and @revoked (docs/decisions.md). What OpenSSH does
 * and this follows: a line matches when one of its comma-separated patterns matches the name
 * (`host` on port 22, `[host]:port` otherwise) and none of its `!` patterns does; `|1|salt|hash`
 * is HMAC-SHA1(salt, name); a @revoked key is refused; @cert-authority lines are ignored (tend
 * does not do host certificates). Known name, same key: trusted. Known name, other key of that
 * type: changed. Otherwise: unknown.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type KnownHostVerdict = 'trusted' | 'unknown' | 'changed' | 'revoked';

export interface KnownHostEntry {
  marker: '@revoked' | '@cert-authority' | null;
  patterns: string[];
  type: string;
  key: string;
}

/** OpenSSH's name for a host in known_hosts. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's default files: the user's, then the system's. */
export function defaultKnownHostsFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  return [join(home, '.ssh', 'known_hosts'), join(home, '.ssh', 'known_hosts2'), '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    const marker = f[0] === '@revoked' || f[0] === '@cert-authority' ? (f.shift() as KnownHostEntry['marker']) : null;
    if (f.length < 3) continue;
    out.push({ marker, patterns: f[0].split(','), type: f[1], key: f[2] });
  }
  return out;
}

function globMatch(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

function patternMatches(p: string, name: string): boolean {
  const h = /^\|1\|([^|]+)\|(.+)$/.exec(p);
  if (h) return createHmac('sha1', Buffer.from(h[1], 'base64')).update(name).digest('base64') === h[2];
  return globMatch(p, name);
}

export function hostMatches(patterns: readonly string[], name: string): boolean {
  let hit = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) hit = true;
  }
  return hit;
}

/** The verdict for a key ("TYPE BASE64") presented by `name` (knownHostName). */
export function checkKnownHost(entries: readonly KnownHostEntry[], name: string, keyType: string, keyBase64: string): KnownHostVerdict {
  const mine = entries.filter((e) => e.marker !== '@cert-authority' && hostMatches(e.patterns, name));
  if (entries.some((e) => e.marker === '@revoked' && e.key === keyBase64)) return 'revoked';
  if (mine.some((e) => e.marker === null && e.type === keyType && e.key === keyBase64)) return 'trusted';
  if (mine.some((e) => e.marker === null && e.type === keyType)) return 'changed';
  return 'unknown';
}

/** Entries of every readable file (a missing file is no entries, as for OpenSSH). */
export async function readKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    all.push(...parseKnownHosts(text));
  }
  return all;
}

/** Key types known for `name`, for the host key algorithms to offer first (as OpenSSH orders them). */
export function knownKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  return [...new Set(entries.filter((e) => e.marker === null && hostMatches(e.patterns, name)).map((e) => e.type))];
}
