/**
 * A remote libvirt URI (`qemu+ssh://user@host:port/system?keyfile=...`), read with the WHATWG URL
 * parser: the host tend reaches over SSH for guest access (an SSH jump, src/ssh/jump.ts) and the
 * parameters libvirt and tend both honour. Local URIs (qemu:///system, qemu:///session, +unix)
 * are not remote.
 *
 * Parameters tend reads (libvirt's names): `keyfile` (the private key for the host), `known_hosts`
 * (the known_hosts file to check the host's key against; default: OpenSSH's), `no_verify=1`
 * (do not check the host's key). libvirt's plain `ssh` transport hands `keyfile` and `no_verify`
 * to OpenSSH and ignores `known_hosts` (OpenSSH then reads its own); `libssh`/`libssh2` honour all
 * three.
 */
import { isLocalUri } from './connect.js';

export interface RemoteHost {
  uri: string;
  /** the part after `qemu+`: ssh, libssh, libssh2, tcp, tls, ... */
  transport: string;
  /** the libvirt path: /system or /session */
  path: string;
  user: string | null;
  host: string;
  /** the SSH (or TCP/TLS) port; null: the transport's default */
  port: number | null;
  keyfile: string | null;
  knownHosts: string | null;
  noVerify: boolean;
}

const SSH_TRANSPORTS = new Set(['ssh', 'libssh', 'libssh2']);

/** The remote host of a libvirt URI, or null for a local URI (or one that does not parse). */
export function parseRemoteUri(uri: string): RemoteHost | null {
  if (isLocalUri(uri)) return null;
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return null;
  }
  const m = /^[a-z0-9]+(?:\+([a-z0-9]+))?:$/i.exec(u.protocol);
  if (!m || u.hostname === '') return null;
  const p = u.searchParams;
  const noVerify = p.get('no_verify');
  return {
    uri,
    transport: (m[1] ?? 'tls').toLowerCase(),
    path: u.pathname,
    user: u.username ? decodeURIComponent(u.username) : null,
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : null,
    keyfile: p.get('keyfile'),
    knownHosts: p.get('known_hosts'),
    noVerify: noVerify !== null && noVerify !== '0',
  };
}

/** Whether tend can reach guests behind this host: an SSH transport (the jump needs sshd there). */
export function isSshTransport(r: RemoteHost): boolean {
  return SSH_TRANSPORTS.has(r.transport);
}

/** `user@host:port` of a remote URI, as people write it (no keys, no parameters). */
export function remoteLabel(r: RemoteHost): string {
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  return `${r.user ? `${r.user}@` : ''}${host}${r.port !== null ? `:${r.port}` : ''}`;
}
