/**
 * Port forwards as compose writes them: "[bind:][host:]guest[/proto]".
 *
 *   "80"                    guest 80, host port allocated (stable, persisted)
 *   "8080:80"               host 8080 → guest 80
 *   "0.0.0.0:8080:80/udp"   bound to every address, UDP
 *   "127.0.0.1::80"         bound address given, host port allocated
 *   "[::1]:8080:80"         IPv6 bind address in brackets
 *   "0:80"                  host port 0 = allocate one (as holos and docker read it)
 *   "0.0.0.0:8080:10.0.2.15:80"  bind:host:guestaddr:guest (QEMU hostfwd's own order); the guest
 *                           address must be the one QEMU's user network gives the guest, 10.0.2.15,
 *                           which is where tend forwards anyway
 *
 * Shared by every dialect loader. Never throws: returns a result with a plain-words message.
 */

export interface ParsedPort {
  /** bind address on the host; absent = the default (127.0.0.1) */
  hostAddress?: string;
  /** absent or null = allocate a free port */
  hostPort?: number | null;
  guestPort: number;
  protocol: 'tcp' | 'udp';
}

export type PortSpecResult = { ok: true; value: ParsedPort } | { ok: false; message: string; hint?: string };

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_RE = /^[0-9a-fA-F:.]+$/;
/** the address QEMU's user-mode network (slirp) gives the guest: where every forward goes */
export const USER_NET_GUEST_ADDRESS = '10.0.2.15';

function fail(message: string, hint?: string): PortSpecResult {
  return hint ? { ok: false, message, hint } : { ok: false, message };
}

/** A port number 1..65535 (0 too for a host port: "allocate one"), or a message saying why `s` is not one. */
function portNumber(s: string, what: string, spec: string): number | string {
  if (s === '') return `the ${what} port is empty in "${spec}"`;
  if (/^\d+-\d+$/.test(s)) return `port ranges ("${s}") are not supported in "${spec}"`;
  if (!/^\d+$/.test(s)) return `the ${what} port "${s}" in "${spec}" is not a number`;
  const n = Number(s);
  if (n < 1 || n > 65535) return `the ${what} port ${n} in "${spec}" is out of range (1-65535)`;
  return n;
}

export function parsePortSpec(input: string): PortSpecResult {
  const spec = input.trim();
  if (spec === '') return fail('the port is empty', 'write "8080:80" (host:guest) or "80" (guest only)');

  let body = spec;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    const proto = spec.slice(slash + 1).toLowerCase();
    body = spec.slice(0, slash);
    if (proto !== 'tcp' && proto !== 'udp') {
      return fail(`the protocol "${spec.slice(slash + 1)}" in "${spec}" is not tcp or udp`, `write "${body}/tcp" or "${body}/udp"`);
    }
    protocol = proto;
  }

  let hostAddress: string | undefined;
  let rest = body;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return fail(`the IPv6 address in "${spec}" has no closing "]"`, 'write "[::1]:8080:80"');
    hostAddress = rest.slice(1, close);
    if (!IPV6_RE.test(hostAddress) || !hostAddress.includes(':')) return fail(`"${hostAddress}" in "${spec}" is not an IPv6 address`);
    rest = rest.slice(close + 1);
    if (!rest.startsWith(':')) return fail(`"${spec}" needs ":" after the bind address`, 'write "[::1]:8080:80"');
    rest = rest.slice(1);
  }

  const parts = rest.split(':');
  if (hostAddress === undefined && parts.length === 4) {
    // bind:host:guestaddr:guest
    const guestAddress = parts.splice(2, 1)[0];
    if (guestAddress !== USER_NET_GUEST_ADDRESS) {
      return fail(
        `the guest address ${guestAddress} in "${spec}" is not the VM's user-network address ${USER_NET_GUEST_ADDRESS}`,
        `forwards always reach the guest at ${USER_NET_GUEST_ADDRESS}: write "${parts[0]}:${parts[1]}:${parts[2]}"`,
      );
    }
  }
  if (hostAddress === undefined && parts.length === 3) {
    hostAddress = parts.shift() as string;
    if (!IPV4_RE.test(hostAddress)) {
      return fail(`"${hostAddress}" in "${spec}" is not an IPv4 address`, 'the form is [address:][host:]guest, e.g. "127.0.0.1:8080:80"');
    }
  }
  if (parts.length > 2 || (hostAddress !== undefined && parts.length !== 2)) {
    return fail(`"${spec}" has too many ":" parts`, 'the form is [address:][host:]guest[/proto], e.g. "127.0.0.1:8080:80/tcp"');
  }

  const guestStr = parts[parts.length - 1];
  const guest = portNumber(guestStr, 'guest', spec);
  if (typeof guest === 'string') return fail(guest, guestStr === '' ? 'write "8080:80" (host:guest)' : undefined);

  let hostPort: number | null = null;
  if (parts.length === 2) {
    if (parts[0] === '0') {
      // "0:80": allocate a host port (holos, docker)
    } else if (parts[0] !== '') {
      const host = portNumber(parts[0], 'host', spec);
      if (typeof host === 'string') return fail(host);
      hostPort = host;
    } else if (hostAddress === undefined) {
      return fail(`the host port is empty in "${spec}"`, `write "${guest}" to let tend pick a host port, or "8080:${guest}"`);
    }
  }

  const value: ParsedPort = { hostPort, guestPort: guest, protocol };
  if (hostAddress !== undefined) value.hostAddress = hostAddress;
  return { ok: true, value };
}
