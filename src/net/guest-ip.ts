/**
 * Where a TAP-networked guest is: its IPv4 address from its MAC, looked up first in the host's
 * neighbour table (`ip -4 neigh show`, filled as soon as the guest talks), then in dnsmasq lease
 * files (the bridge's DHCP server). The parsers are pure; `findGuestIp` runs `ip` and reads the
 * lease files.
 */
import { readFile } from 'node:fs/promises';

export interface GuestAddress {
  address: string;
  source: 'neighbour' | 'lease';
  /** the interface the neighbour entry is on (neighbour only) */
  dev?: string;
}

/** Lines of `ip -4 neigh show`: "10.0.0.5 dev br0 lladdr 52:54:00:aa:bb:cc REACHABLE". */
export function parseNeighbours(text: string): { address: string; dev: string; mac: string; state: string }[] {
  const out: { address: string; dev: string; mac: string; state: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+\.\d+\.\d+)\s+dev\s+(\S+)\s+lladdr\s+([0-9a-fA-F:]{17})\b(.*)$/.exec(line.trim());
    if (m) out.push({ address: m[1], dev: m[2], mac: m[3].toLowerCase(), state: (m[4].trim().split(/\s+/).pop() ?? '').toUpperCase() });
  }
  return out;
}

/** dnsmasq lease lines: "<expiry> <mac> <ip> <hostname> <client-id>". */
export function parseLeases(text: string): { expiry: number; mac: string; address: string; hostname: string }[] {
  const out: { expiry: number; mac: string; address: string; hostname: string }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]) || !/^[0-9a-fA-F:]{17}$/.test(f[1]) || !/^\d+\.\d+\.\d+\.\d+$/.test(f[2])) continue;
    out.push({ expiry: Number(f[0]), mac: f[1].toLowerCase(), address: f[2], hostname: f[3] });
  }
  return out;
}

/** Neighbour table first (a usable entry: not FAILED/INCOMPLETE), then the newest unexpired lease. */
export function pickGuestIp(mac: string, neighbours: string, leases: readonly string[], nowSec: number): GuestAddress | null {
  const want = mac.toLowerCase();
  const n = parseNeighbours(neighbours).find((e) => e.mac === want && e.state !== 'FAILED' && e.state !== 'INCOMPLETE');
  if (n) return { address: n.address, source: 'neighbour', dev: n.dev };
  const l = leases
    .flatMap(parseLeases)
    .filter((e) => e.mac === want && (e.expiry === 0 || e.expiry > nowSec))
    .sort((a, b) => b.expiry - a.expiry)[0];
  return l ? { address: l.address, source: 'lease' } : null;
}

export const DEFAULT_LEASE_FILES = [
  '/var/lib/misc/dnsmasq.leases',
  '/var/lib/dnsmasq/dnsmasq.leases',
  '/var/lib/libvirt/dnsmasq/default.leases',
];

/** Look the guest up now. `ipBinary`/`netns` are for tests and namespaces. */
export async function findGuestIp(
  mac: string,
  o: { leaseFiles?: readonly string[]; netns?: string; now?: () => number; env?: NodeJS.ProcessEnv } = {},
): Promise<GuestAddress | null> {
  const { execa } = await import('execa');
  const args = o.netns ? ['netns', 'exec', o.netns, 'ip', '-4', 'neigh', 'show'] : ['-4', 'neigh', 'show'];
  const neigh = await execa('ip', args, { reject: false, stdin: 'ignore', env: o.env ?? process.env });
  const leases = await Promise.all((o.leaseFiles ?? DEFAULT_LEASE_FILES).map((f) => readFile(f, 'utf8').catch(() => '')));
  return pickGuestIp(mac, String(neigh.stdout ?? ''), leases, Math.floor((o.now ?? Date.now)() / 1000));
}
