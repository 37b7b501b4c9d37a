/**
 * Run one command on a guest over SSH (ssh2), collecting its output and exit code.
 *
 * Every failure becomes a BackendError with a stable reason:
 *   SshKeyUnreadable   the private key file cannot be read or parsed
 *   SshConnectFailed   TCP/handshake failed (refused, reset, closed before the banner, ...)
 *   SshAuthFailed      the server refused the key for that user
 *   SshTimeout         `timeoutMs` elapsed (connect + command)
 *   SshSessionLost     the connection dropped before the command reported an exit status
 *   SshExecFailed      the server refused to start the command
 * An aborted `signal` rejects with `signal.reason`.
 */
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig, type ExecOptions, type PseudoTtyOptions } from 'ssh2';
import { BackendError } from '../../schemas/errors.js';
import { forwardThrough, type JumpHost } from './jump.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** path of the private key file (OpenSSH or PEM format, unencrypted) */
  privateKey: string;
  /** a remote libvirt host the guest's port is reached through (host:port as seen from there) */
  jump?: JumpHost;
}

export interface SshExecOptions extends SshTarget {
  command: string;
  signal?: AbortSignal;
  /** overall limit for connecting and running the command (default: no limit once connected; 20 s handshake) */
  timeoutMs?: number;
  onStdout?: (b: Buffer) => void;
  onStderr?: (b: Buffer) => void;
}

/** What `tend exec` adds to a plain command run (src/cli/commands/exec.ts). */
export interface SshSessionOptions {
  /**
   * The command's stdin: a stream is forwarded (and its end sent as EOF); null sends EOF at once.
   * Undefined leaves the channel's stdin open and unused (provisioning, healthchecks).
   */
  stdin?: Readable | null;
  /** allocate a pseudo-terminal of this size and type (the guest then merges stderr into stdout) */
  pty?: PseudoTtyOptions;
  /** called with a function that resizes the pseudo-terminal (window size changes) */
  onPty?: (resize: (rows: number, cols: number) => void) => void;
  /** a command killed by signal N resolves with code 128+N, as a shell reports it, instead of failing */
  signalAsCode?: boolean;
}

export interface SshExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const DEFAULT_HANDSHAKE_MS = 20_000;

export { shellQuote } from './shell-quote.js';

/** Reads a private key file, failing with an actionable message. */
export async function readPrivateKey(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new BackendError('SshKeyUnreadable', `cannot read SSH private key ${path}: ${(cause as Error).message}`, { cause });
  }
}

/** Turns an ssh2 connection error into a BackendError naming target, user and key. */
export function describeSshError(err: Error & { level?: string; code?: string }, t: SshTarget): BackendError {
  const where = `${t.host}:${t.port}`;
  if (err.level === 'client-authentication') {
    return new BackendError(
      'SshAuthFailed',
      `SSH login refused on ${where} for user ${t.user} with key ${t.privateKey}: is that user's authorized_keys holding the matching public key (${t.privateKey}.pub)?`,
      { cause: err },
    );
  }
  if (err.level === 'client-timeout') {
    return new BackendError('SshTimeout', `SSH handshake with ${where} timed out: is sshd running in the guest?`, { cause: err });
  }
  const detail = err.code ? `${err.code}: ${err.message}` : err.message;
  return new BackendError('SshConnectFailed', `cannot connect to SSH on ${where}: ${detail}`, { cause: err });
}

/** Opens an authenticated ssh2 connection. The caller owns the returned client and must `end()` it. */
export async function sshConnect(
  t: SshTarget,
  opts: {
    signal?: AbortSignal;
    readyTimeoutMs?: number;
    hostVerifier?: (key: Buffer) => boolean;
    /** called once the key exchange is done (so the server's banner was seen), before authentication */
    onHandshake?: () => void;
  } = {},
): Promise<Client> {
  opts.signal?.throwIfAborted();
  const key = await readPrivateKey(t.privateKey);
  opts.signal?.throwIfAborted();
  const hop = t.jump ? await forwardThrough(t.jump, t.host, t.port, { ...opts, env: process.env }) : null;
  return new Promise<Client>((resolve, reject) => {
    const client = new Client();
    let settled = false;
    const onAbort = (): void => settle(opts.signal?.reason ?? new Error('aborted'));
    const settle = (err: unknown): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (err === null) {
        resolve(client);
      } else {
        client.destroy();
        hop?.close();
        reject(err);
      }
    };
    if (hop) client.once('close', hop.close);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // An 'error' event without a listener would kill the process: always listen, even after settling.
    client.on('error', (err: Error & { level?: string }) => settle(describeSshError(err, t)));
    client.on('ready', () => settle(null));
    if (opts.onHandshake) client.once('handshake', opts.onHandshake);
    client.on('close', () =>
      settle(new BackendError('SshConnectFailed', `SSH connection to ${t.host}:${t.port} closed during the handshake`)),
    );
    const config: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      privateKey: key,
      // straight to the key: no 'none' request first to list the methods (one round trip less,
      // each one slow to a guest under TCG); a refused key still fails with 'client-authentication'
      authHandler: ['publickey'],
      readyTimeout: opts.readyTimeoutMs ?? DEFAULT_HANDSHAKE_MS,
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      // Guests regenerate host keys on first boot; tend trusts the port it forwarded itself.
      // Callers that pin host keys (src/ssh/known-hosts.ts) pass their own verifier.
      hostVerifier: opts.hostVerifier ?? (() => true),
      ...(hop ? { sock: hop.stream } : {}),
    };
    try {
      client.connect(config);
    } catch (cause) {
      // ssh2 throws synchronously for keys it cannot parse (encrypted, wrong format).
      const msg = (cause as Error).message;
      settle(new BackendError('SshKeyUnreadable', `cannot use SSH private key ${t.privateKey}: ${msg}`, { cause }));
    }
  });
}

/** Runs `command` on an open client; does not close the client. */
export function execOnClient(
  client: Client,
  t: SshTarget,
  command: string,
  opts: Pick<SshExecOptions, 'signal' | 'onStdout' | 'onStderr'> & SshSessionOptions = {},
): Promise<SshExecResult> {
  return new Promise<SshExecResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let code: number | null = null;
    let exitSignal: string | null = null;
    let settled = false;
    const onAbort = (): void => done(opts.signal?.reason ?? new Error('aborted'));
    const onClientGone = (): void =>
      done(new BackendError('SshSessionLost', `SSH connection to ${t.host}:${t.port} dropped while running: ${command}`));
    const onClientError = (e: Error): void =>
      done(
        new BackendError('SshSessionLost', `SSH connection to ${t.host}:${t.port} failed while running ${command}: ${e.message}`, {
          cause: e,
        }),
      );
    const done = (e: unknown): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      client.off('close', onClientGone);
      client.off('error', onClientError);
      if (e !== null) return reject(e);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === null && exitSignal && opts.signalAsCode) {
        const n = constants.signals[(exitSignal.startsWith('SIG') ? exitSignal : `SIG${exitSignal}`) as NodeJS.Signals];
        if (n !== undefined) return resolve({ code: 128 + n, stdout, stderr });
      }
      if (code === null) {
        const why = exitSignal ? `was killed by signal ${exitSignal}` : 'ended without an exit status';
        return reject(
          new BackendError('SshSessionLost', `command on ${t.host}:${t.port} ${why}: ${command}${stderr ? `\n${stderr.trimEnd()}` : ''}`),
        );
      }
      resolve({ code, stdout, stderr });
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    client.on('close', onClientGone);
    client.on('error', onClientError);
    const execOpts: ExecOptions = opts.pty ? { pty: opts.pty } : {};
    client.exec(command, execOpts, (e: Error | undefined, stream: ClientChannel) => {
      if (e)
        return done(
          new BackendError('SshExecFailed', `SSH server on ${t.host}:${t.port} refused to run ${command}: ${e.message}`, { cause: e }),
        );
      if (settled) {
        stream.close();
        return;
      }
      stream.on('data', (b: Buffer) => {
        out.push(b);
        opts.onStdout?.(b);
      });
      stream.stderr.on('data', (b: Buffer) => {
        err.push(b);
        opts.onStderr?.(b);
      });
      stream.on('error', (se: Error) =>
        done(new BackendError('SshSessionLost', `SSH channel error while running ${command}: ${se.message}`, { cause: se })),
      );
      stream.stderr.on('error', () => {});
      stream.on('exit', (c: number | null, sig?: string) => {
        if (typeof c === 'number') code = c;
        else if (sig) exitSignal = sig;
      });
      stream.on('close', () => {
        opts.stdin?.unpipe(stream);
        done(null);
      });
      if (opts.pty) opts.onPty?.((rows, cols) => stream.setWindow(rows, cols, 0, 0));
      if (opts.stdin === null) stream.end();
      else if (opts.stdin) opts.stdin.pipe(stream);
    });
  });
}

/** Connects, runs one command, disconnects. A non-zero exit code is a result, not an error. */
export async function sshExec(
  opts: SshExecOptions & SshSessionOptions & { hostVerifier?: (key: Buffer) => boolean },
): Promise<SshExecResult> {
  const t: SshTarget = {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    privateKey: opts.privateKey,
    ...(opts.jump ? { jump: opts.jump } : {}),
  };
  const timeout = opts.timeoutMs;
  const ctl = new AbortController();
  const timeoutError = new BackendError(
    'SshTimeout',
    `SSH command on ${t.host}:${t.port} did not finish within ${timeout} ms: ${opts.command}`,
  );
  const timer = timeout !== undefined ? setTimeout(() => ctl.abort(timeoutError), timeout) : undefined;
  const onOuterAbort = (): void => ctl.abort(opts.signal?.reason);
  if (opts.signal?.aborted) ctl.abort(opts.signal.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let client: Client | undefined;
  try {
    client = await sshConnect(t, {
      signal: ctl.signal,
      readyTimeoutMs: timeout !== undefined ? Math.min(timeout, DEFAULT_HANDSHAKE_MS) : DEFAULT_HANDSHAKE_MS,
      ...(opts.hostVerifier ? { hostVerifier: opts.hostVerifier } : {}),
    });
    return await execOnClient(client, t, opts.command, {
      signal: ctl.signal,
      onStdout: opts.onStdout,
      onStderr: opts.onStderr,
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
      ...(opts.pty ? { pty: opts.pty } : {}),
      ...(opts.onPty ? { onPty: opts.onPty } : {}),
      ...(opts.signalAsCode ? { signalAsCode: true } : {}),
    });
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (client) {
      client.on('error', () => {});
      client.end();
    }
  }
}
