/**
 * Reaching a guest that runs on a remote libvirt host: an SSH connection to that host (ssh2),
 * then a direct-tcpip channel (`forwardOut`) to the guest's port forward, which libvirt's QEMU
 * binds to 127.0.0.1 *on that host*. Readiness, exec, provisioning and the healthcheck run their
 * guest connection over that channel (src/ssh/exec.ts, ready.ts); `tend ssh` gives the system
 * ssh the same hop as a ProxyCommand (jumpProxyCommand).
 *
 * The host is the libvirt URI's (`qemu+ssh://user@host:port/system`): user (default: the local
 * user), port (default 22). Keys, in order: the URI's `keyfile`, else the user's ssh agent
 * ($SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa (unencrypted) — what `ssh` itself
 * would offer, and what libvirt's own ssh transport used to reach the daemon.
 * The host's key is checked as OpenSSH checks it (src/ssh/openssh-known-hosts.ts): against the
 * URI's `known_hosts` file, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts; `no_verify=1`
 * skips the check, as it does for libvirt.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import ssh2, { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { BackendError } from '../../schemas/errors.js';
import { parseRemoteUri, isSshTransport, remoteLabel } from '../libvirt/remote-uri.js';
import { hostKeyLine } from './known-hosts.js';
import { shellQuote } from './shell-quote.js';
import { checkKnownHost, defaultKnownHostsFiles, knownHostName, knownKeyTypes, readKnownHosts } from './openssh-known-hosts.js';

export interface JumpHost {
  host: string;
  port: number;
  user: string;
  /** the URI's keyfile; null: agent and ~/.ssh keys */
  keyfile: string | null;
  /** the URI's known_hosts; null: OpenSSH's default files */
  knownHosts: string | null;
  noVerify: boolean;
  /** user@host:port, for messages */
  label: string;
}

const HOME_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** The jump host of a libvirt URI; null for a local URI. A remote URI without SSH cannot reach guests. */
export function jumpOf(uri: string, env: NodeJS.ProcessEnv = process.env): JumpHost | null {
  const r = parseRemoteUri(uri);
  if (!r) return null;
  if (!isSshTransport(r)) {
    throw new BackendError(
      'LibvirtRemoteUnsupported',
      `${uri}: tend reaches guests on a remote host over SSH; use an ssh transport (qemu+ssh://, qemu+libssh://, qemu+libssh2://)`,
    );
  }
  const user = r.user ?? env.USER ?? userInfo().username;
  return {
    host: r.host,
    port: r.port ?? 22,
    user,
    keyfile: r.keyfile,
    knownHosts: r.knownHosts,
    noVerify: r.noVerify,
    label: remoteLabel({ ...r, user }),
  };
}

type AuthMethod = { type: 'agent'; username: string; agent: string } | { type: 'publickey'; username: string; key: Buffer };

async function authMethods(j: JumpHost, env: NodeJS.ProcessEnv): Promise<AuthMethod[]> {
  if (j.keyfile) {
    const key = await readFile(j.keyfile).catch((cause: unknown) => {
      throw new BackendError('SshKeyUnreadable', `cannot read the key for ${j.label} (keyfile=${j.keyfile}): ${(cause as Error).message}`, {
        cause,
      });
    });
    return [{ type: 'publickey', username: j.user, key }];
  }
  const out: AuthMethod[] = [];
  if (env.SSH_AUTH_SOCK) out.push({ type: 'agent', username: j.user, agent: env.SSH_AUTH_SOCK });
  const home = env.HOME || homedir();
  for (const k of HOME_KEYS) {
    const p = join(home, '.ssh', k);
    if (!existsSync(p)) continue;
    const key = await readFile(p).catch(() => null);
    // an encrypted key needs the agent: skip it here as ssh would without a passphrase prompt
    if (key && !(ssh2.utils.parseKey(key) instanceof Error)) out.push({ type: 'publickey', username: j.user, key });
  }
  return out;
}

const HOST_KEY_ALGOS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** An authenticated connection to the jump host; the caller ends it. */
export async function connectJump(
  j: JumpHost,
  o: { signal?: AbortSignal; readyTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Client> {
  const env = o.env ?? process.env;
  o.signal?.throwIfAborted();
  const auth = await authMethods(j, env);
  if (auth.length === 0) {
    throw new BackendError(
      'SshKeyNotFound',
      `no SSH key for ${j.label}: start an ssh agent (ssh-add), put a key in ~/.ssh, or name one in the URI (?keyfile=PATH)`,
    );
  }
  const files = j.knownHosts ? [j.knownHosts] : defaultKnownHostsFiles(env);
  const entries = j.noVerify ? [] : await readKnownHosts(files);
  const name = knownHostName(j.host, j.port);
  const preferred = knownKeyTypes(entries, name).flatMap((t) => HOST_KEY_ALGOS[t] ?? []);
  let refused: BackendError | null = null;
  return new Promise<Client>((resolve, reject) => {
    const client = new Client();
    let settled = false;
    const onAbort = (): void => settle(o.signal?.reason ?? new Error('aborted'));
    const settle = (err: unknown): void => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      if (err === null) return resolve(client);
      client.destroy();
      reject(err);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    client.on('error', (err: Error & { level?: string }) => {
      if (refused) return settle(refused);
      if (err.level === 'client-authentication') {
        return settle(
          new BackendError(
            'SshAuthFailed',
            `the libvirt host ${j.label} refused every key tend offered (${j.keyfile ? `keyfile=${j.keyfile}` : 'ssh agent and ~/.ssh keys'}): check \`ssh -p ${j.port} ${j.user}@${j.host}\``,
            { cause: err },
          ),
        );
      }
      settle(new BackendError('SshConnectFailed', `cannot reach the libvirt host ${j.label} over SSH: ${err.message}`, { cause: err }));
    });
    client.on('ready', () => settle(null));
    client.on('close', () =>
      settle(refused ?? new BackendError('SshConnectFailed', `SSH connection to ${j.label} closed during the handshake`)),
    );
    const config: ConnectConfig = {
      host: j.host,
      port: j.port,
      username: j.user,
      authHandler: auth,
      readyTimeout: o.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      ...(preferred.length > 0 ? { algorithms: { serverHostKey: { prepend: preferred } as never } } : {}),
      hostVerifier: (key: Buffer): boolean => {
        if (j.noVerify) return true;
        const [type, b64] = hostKeyLine(key).split(' ');
        const v = checkKnownHost(entries, name, type, b64);
        if (v === 'trusted') return true;
        refused =
          v === 'unknown'
            ? new BackendError(
                'HostKeyUnknown',
                `the libvirt host ${j.label} is not in ${files.join(' or ')} (its ${type} key is unknown): connect once with \`ssh -p ${j.port} ${j.user}@${j.host}\` and accept the key, or add it with \`ssh-keyscan -p ${j.port} ${j.host} >> ~/.ssh/known_hosts\` after checking it`,
              )
            : new BackendError(
                'HostKeyChanged',
                `the libvirt host ${j.label} presented a ${v === 'revoked' ? 'revoked' : 'different'} ${type} key than ${files.join(' or ')} holds: possibly someone in the middle; if the host's keys were changed on purpose, update that file (ssh-keygen -R '${name}')`,
              );
        return false;
      },
    };
    try {
      client.connect(config);
    } catch (cause) {
      settle(new BackendError('SshKeyUnreadable', `cannot use the key for ${j.label}: ${(cause as Error).message}`, { cause }));
    }
  });
}

/**
 * A channel to host:port as seen from the jump host, over a new jump connection. Ending the
 * channel's user must call `close()` (it ends the jump connection too).
 */
export async function forwardThrough(
  j: JumpHost,
  host: string,
  port: number,
  o: { signal?: AbortSignal; readyTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ stream: ClientChannel; close: () => void }> {
  const jump = await connectJump(j, o);
  const close = (): void => {
    jump.on('error', () => {});
    jump.end();
  };
  try {
    const stream = await new Promise<ClientChannel>((resolve, reject) => {
      jump.forwardOut('127.0.0.1', 0, host, port, (err, ch) => (err ? reject(err) : resolve(ch)));
    });
    stream.on('close', close);
    return { stream, close };
  } catch (err) {
    close();
    throw new BackendError('SshConnectFailed', `cannot reach ${host}:${port} through ${j.label}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The system ssh's `-o ProxyCommand=...` for the same hop (`ssh -W`), with the URI's key and known_hosts. */
export function jumpProxyCommand(j: JumpHost): string {
  const args = ['ssh', '-W', '%h:%p', '-p', String(j.port), '-l', j.user];
  if (j.keyfile) args.push('-i', j.keyfile, '-o', 'IdentitiesOnly=yes');
  if (j.noVerify) args.push('-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null');
  else if (j.knownHosts) args.push('-o', `UserKnownHostsFile=${j.knownHosts}`);
  args.push('--', j.host);
  // ProxyCommand is run by the user's shell
  return args.map((a) => (a === '%h:%p' ? a : shellQuote(a))).join(' ');
}
