/**
 * Staged SSH readiness of a guest: SSH banner → login → cloud-init done (in the guest's shell, on
 * cloud-init's own result file; `cloud-init status --wait` where that does not tell: see
 * `cloudInitWaitCommand`).
 *
 * Each stage retries until its own time limit (counted from the stage's start) and fails with
 * a message that says which stage did not pass and what to check:
 *   GuestAddressUnknown  (TAP networking, `locate`) the guest's address was never found
 *   SshBannerTimeout   nothing answered with an SSH banner on host:port
 *   SshLoginFailed     a banner was seen but login never worked (user/key)
 *   CloudInitTimeout   cloud-init did not finish in time
 *   CloudInitFailed    cloud-init finished with errors (exit 1) or recoverable errors (exit 2);
 *                      the message carries `cloud-init status --long`
 *   CloudInitMissing   cloud-init is not installed in the guest but `cloudInit` was requested
 * A session dropped during the cloud-init wait (cloud-init restarts sshd after regenerating
 * host keys) is retried, not failed. An aborted `signal` rejects with `signal.reason`.
 *
 * A guest that is already up passes banner and login on one connection (the first attempt is a
 * full login; the login stage starts when its key exchange is done). `openReadySsh` keeps the
 * connection the wait ended on, with the host key it presented, for the caller's next commands.
 */
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { forwardThrough, type JumpHost } from './jump.js';
import type { Client } from 'ssh2';
import { systemClock } from '../state/clock.js';
import type { Clock } from '../../schemas/ports.js';
import { BackendError, TendError } from '../../schemas/errors.js';
import { execOnClient, shellQuote, sshConnect, type SshTarget } from './exec.js';

export type SshStage = 'banner' | 'login' | 'cloud-init';

export interface WaitForSshOptions extends SshTarget {
  signal?: AbortSignal;
  /** time limit of the banner stage, and of the others when they have none of their own */
  timeoutMs: number;
  /** time limit of the login stage (from the banner) */
  loginTimeoutMs?: number;
  /** time limit of the cloud-init stage (from the first login) */
  cloudInitTimeoutMs?: number;
  /** also wait for `cloud-init status --wait` to succeed */
  cloudInit: boolean;
  /**
   * Where the guest is when that is not known in advance (TAP networking: its DHCP address):
   * looked up before each banner attempt, within the banner stage's limit; `host` is then only
   * a first guess ('' for none).
   */
  locate?: GuestLocator;
  /** called when a stage starts */
  onStage?: (stage: SshStage) => void;
  /** time source (tests); defaults to the system clock */
  clock?: Clock;
  /**
   * pause between attempts (default: 250 ms while no SSH banner answers, 1000 ms between login
   * and cloud-init attempts)
   */
  retryDelayMs?: number;
  /**
   * The guest boot (/proc/sys/kernel/random/boot_id) cloud-init was last seen done in: while the
   * guest runs that same boot, the cloud-init wait is skipped (issue 15 §3b). `done` is called
   * with the boot id once cloud-init finished.
   */
  cloudInitBoot?: { recorded: string | null; done: (bootId: string) => Promise<void> };
  /** where the guest keeps cloud-init's run state and its host keys (tests point them elsewhere) */
  guestPaths?: GuestPaths;
}

const BOOT_ID_RE = /^boot=([0-9a-f-]{36})$/m;

export interface GuestPaths {
  /** cloud-init's run directory: the current boot's state (a tmpfs: nothing in it survives a reboot) */
  cloudInitRunDir: string;
  /** a shell glob of sshd's host public keys */
  hostKeys: string;
}

export const GUEST_PATHS: GuestPaths = { cloudInitRunDir: '/run/cloud-init', hostKeys: '/etc/ssh/ssh_host_*_key.pub' };

/**
 * The guest side of the cloud-init stage, one shell command (issue 15 §3c). It prints the guest's
 * boot id, ends at once when that boot was recorded done (`rc=0 done`), else waits for cloud-init
 * and prints `rc=<exit>` as `cloud-init status --wait` would exit, then, when done, flushes the
 * guest's filesystems (`sync`) and prints its host public keys (`hostkey=...`).
 *
 * `cloud-init status --wait` is a Python process: under TCG its start-up alone costs the guest
 * seconds of CPU, taken from cloud-init itself while it runs. So while cloud-init's generator
 * enabled it in this boot (`enabled` in its run directory), a shell loop waits for the file
 * cloud-init writes last, `result.json` (written after the final stage, once status.json records
 * every stage finished: what `cloud-init status` itself reads as done), at the cost of a `sleep`
 * every 250 ms. Done without errors is read from that file only in the form cloud-init writes it
 * (`"errors": []` and no non-empty error list or map); any other content (errors, another
 * format), and a guest where the loop does not apply (no `enabled`: an init system without
 * cloud-init's generator, cloud-init disabled or missing), is judged by `cloud-init status
 * --wait` itself, whose exit status is then the stage's (1 and 2: errors; 127: missing).
 */
export function cloudInitWaitCommand(recordedBoot: string | null, paths: GuestPaths = GUEST_PATHS): string {
  const r = shellQuote(paths.cloudInitRunDir);
  if (!/^[\w./*-]+$/.test(paths.hostKeys)) throw new Error(`host key glob ${paths.hostKeys}: letters, digits, . / * - _ only`);
  return [
    'b=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null); echo "boot=$b"',
    ...(recordedBoot ? [`if [ "$b" = "${recordedBoot}" ]; then echo "rc=0 done"; exit 0; fi`] : []),
    `R=${r}`,
    'if [ -e "$R/enabled" ]; then while [ ! -e "$R/result.json" ] && [ ! -e "$R/disabled" ]; do sleep 0.25 2>/dev/null || sleep 1; done; fi',
    'if [ -e "$R/result.json" ] && grep -q \'"errors": \\[\\]\' "$R/result.json" && ! grep -Eq \'"[a-z_]*errors": [[{] *$\' "$R/result.json"; ' +
      'then rc=0; else cloud-init status --wait >/dev/null 2>&1; rc=$?; fi',
    // done in this boot for the first time: what cloud-init made (host keys, network config) goes
    // to disk, or a crash right after Ready leaves empty host key files and an sshd that never starts
    `if [ "$rc" = 0 ]; then sync; for k in ${paths.hostKeys}; do [ -r "$k" ] && echo "hostkey=$(cat "$k")"; done; fi`,
    'echo "rc=$rc"; exit $rc',
  ].join('\n');
}

/** The host keys (base64 blobs) a cloud-init wait's output lists. */
function hostKeysOf(stdout: string): string[] {
  return [...stdout.matchAll(/^hostkey=\S+ ([A-Za-z0-9+/=]+)/gm)].map((m) => m[1]);
}

/** Finds a guest whose address is not known in advance (src/ssh/target.ts for TAP). */
export interface GuestLocator {
  /** the guest's address now, or null while it is not known */
  find(signal?: AbortSignal): Promise<string | null>;
  /** the GuestAddressUnknown message after `seconds` without an address: what to check */
  unknown(seconds: number): string;
}

/** Connects over TCP and resolves with the server's identification line ("SSH-2.0-..."). */
export async function readSshBanner(host: string, port: number, timeoutMs: number, signal?: AbortSignal, jump?: JumpHost): Promise<string> {
  // through a remote libvirt host: the same read on a channel opened from there
  const hop = jump ? await forwardThrough(jump, host, port, { ...(signal ? { signal } : {}), readyTimeoutMs: timeoutMs }) : null;
  try {
    return await bannerOf(hop ? hop.stream : netConnect({ host, port }), timeoutMs, signal);
  } finally {
    hop?.close();
  }
}

function bannerOf(sock: Duplex, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let buf = '';
    let settled = false;
    const onAbort = (): void => done(signal?.reason ?? new Error('aborted'));
    const timer = setTimeout(() => done(new Error(`no SSH banner within ${timeoutMs} ms`)), timeoutMs);
    const done = (err: unknown, banner?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      if (err) reject(err);
      else resolve(banner ?? '');
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.setEncoding('latin1');
    sock.on('error', (e) => done(e));
    // QEMU's user-mode hostfwd accepts the TCP connection even when nothing listens in the
    // guest, then closes it: that is "no banner", not "up".
    sock.on('close', () => done(new Error('connection closed before an SSH banner')));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (const line of buf.split('\n')) {
        if (line.startsWith('SSH-')) return done(null, line.trim());
      }
      if (buf.length > 8192) done(new Error('no SSH banner in the first 8 KiB'));
    });
  });
}

function remaining(clock: Clock, deadline: number): number {
  return Math.max(0, deadline - clock.now());
}

function isTransient(err: unknown): boolean {
  return err instanceof TendError && ['SshConnectFailed', 'SshSessionLost', 'SshTimeout'].includes(err.reason);
}

/** The connection a readiness wait ended on, handed to the caller (who must `end()` it). */
export interface SshReady {
  client: Client;
  /** the host key (raw SSH blob) the server of `client` presented */
  hostKey: Buffer;
  /**
   * The key `client`'s server presented is the guest's for good, so it may be checked against
   * the pin (or pinned) and the connection kept: true when cloud-init is not used, when the wait
   * was skipped because this boot was already recorded done, or when, cloud-init done, the guest
   * listed that key among its host keys (/etc/ssh/ssh_host_*_key.pub). False when the connection
   * was opened while cloud-init ran and the key is not among them (cloud-init may have replaced
   * the host keys, and restarted sshd, since): the caller connects again.
   */
  hostKeyFinal: boolean;
}

/** Waits until the guest accepts an SSH login (and cloud-init is done, when asked). */
export async function waitForSsh(opts: WaitForSshOptions): Promise<void> {
  const { client } = await openReadySsh(opts);
  client.on('error', () => {});
  client.end();
}

/**
 * waitForSsh, keeping the connection it ended on: the caller runs its next commands on it
 * instead of paying for another key exchange and session start in the guest (issue 15 §3b).
 */
export async function openReadySsh(opts: WaitForSshOptions): Promise<SshReady> {
  const clock = opts.clock ?? systemClock;
  const retry = opts.retryDelayMs ?? 1000;
  // a banner probe is one TCP connect the forward refuses or closes at once while sshd is not up:
  // cheap for the guest, so probe often and notice sshd within 250 ms of it listening
  const bannerRetry = opts.retryDelayMs ?? 250;
  // one deadline per stage, reset as each stage starts
  let limitMs = opts.timeoutMs;
  let deadline = clock.now() + limitMs;
  const startStage = (stage: SshStage, ms: number): void => {
    limitMs = ms;
    deadline = clock.now() + ms;
    opts.onStage?.(stage);
  };
  let where = `${opts.host}:${opts.port}`;
  const target: SshTarget = {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    privateKey: opts.privateKey,
    ...(opts.jump ? { jump: opts.jump } : {}),
  };
  const { signal } = opts;
  signal?.throwIfAborted();

  // Stage 1: TCP + SSH banner.
  startStage('banner', opts.timeoutMs);
  let hostKey: Buffer | undefined;
  const connect = (readyTimeoutMs: number, onHandshake?: () => void): Promise<Client> =>
    sshConnect(target, {
      ...(signal ? { signal } : {}),
      readyTimeoutMs,
      ...(onHandshake ? { onHandshake } : {}),
      // nothing is checked while the guest gets ready (src/ssh/known-hosts.ts): the key is kept
      // for the caller, who checks or pins it once it knows the key is final
      hostVerifier: (key) => {
        hostKey = key;
        return true;
      },
    });
  // A guest that is up (a Ready VM, a restored one) answers a login at once: one connection sees
  // the banner and logs in, so no separate banner probe is made. A guest that is not up yet fails
  // this attempt quickly (QEMU's forward closes the connection) and is waited for stage by stage.
  let client: Client | undefined;
  let bannerSeen = false;
  let lastLoginError: unknown;
  if (!opts.locate) {
    try {
      client = await connect(Math.min(10_000, Math.max(1000, remaining(clock, deadline))), () => {
        bannerSeen = true;
        startStage('login', opts.loginTimeoutMs ?? opts.timeoutMs);
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof TendError && err.reason === 'SshKeyUnreadable') throw err;
      lastLoginError = err;
    }
  }
  let lastBannerError = '';
  for (; !bannerSeen;) {
    if (opts.locate) {
      // the address may appear (DHCP) or change (a new lease) while the guest boots
      const found = await opts.locate.find(signal).catch(() => null);
      if (signal?.aborted) throw signal.reason;
      if (found) {
        target.host = found;
        where = `${found}:${opts.port}`;
      } else if (!target.host) {
        if (remaining(clock, deadline) <= 0) throw new BackendError('GuestAddressUnknown', opts.locate.unknown(Math.round(limitMs / 1000)));
        await clock.sleep(Math.min(bannerRetry, remaining(clock, deadline)), signal);
        continue;
      }
    }
    try {
      await readSshBanner(target.host, opts.port, Math.min(10_000, Math.max(1000, remaining(clock, deadline))), signal, target.jump);
      break;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      lastBannerError = (err as Error).message;
    }
    if (remaining(clock, deadline) <= 0) {
      throw new BackendError(
        'SshBannerTimeout',
        `no SSH server answered on ${where} within ${Math.round(limitMs / 1000)} s (last: ${lastBannerError}): ` +
          (opts.locate
            ? `is the guest booting (see its serial console log), is its sshd on port ${opts.port}, and does no firewall on the bridge drop it?`
            : `is the guest booting (see its serial console log) and is port ${opts.port} forwarded to the guest's port 22?`),
      );
    }
    await clock.sleep(Math.min(bannerRetry, remaining(clock, deadline)), signal);
  }

  // Stage 2: login.
  if (!bannerSeen) startStage('login', opts.loginTimeoutMs ?? opts.timeoutMs);
  const login = async (): Promise<Client> => {
    for (;;) {
      try {
        return await connect(Math.min(20_000, Math.max(1000, remaining(clock, deadline))));
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (err instanceof TendError && err.reason === 'SshKeyUnreadable') throw err;
        lastLoginError = err;
      }
      if (remaining(clock, deadline) <= 0) {
        const e = lastLoginError;
        if (e instanceof TendError && e.reason === 'SshAuthFailed') {
          throw new BackendError(
            'SshLoginFailed',
            `SSH banner seen on ${where} but login refused for user ${opts.user} with key ${opts.privateKey}: ` +
              `does the image's cloud-init create that user with that key (${opts.privateKey}.pub in ssh_authorized_keys)?`,
            { cause: e },
          );
        }
        throw new BackendError(
          'SshLoginFailed',
          `SSH banner seen on ${where} but login as ${opts.user} did not succeed within ${Math.round(limitMs / 1000)} s: ${(e as Error | undefined)?.message ?? 'unknown error'}`,
          { cause: e },
        );
      }
      await clock.sleep(Math.min(retry, remaining(clock, deadline)), signal);
    }
  };
  client ??= await login();
  let kept = false;
  const ready = (hostKeyFinal: boolean): SshReady => {
    kept = true;
    return { client: client as Client, hostKey: hostKey as Buffer, hostKeyFinal };
  };
  try {
    if (!opts.cloudInit) return ready(true);

    // Stage 3: cloud-init, skipped while the guest runs the boot it was recorded done in.
    startStage('cloud-init', opts.cloudInitTimeoutMs ?? opts.timeoutMs);
    const known = opts.cloudInitBoot?.recorded;
    const command = cloudInitWaitCommand(known && /^[0-9a-f-]{36}$/.test(known) ? known : null, opts.guestPaths);
    for (;;) {
      try {
        const res = await withDeadline(execOnClient(client, target, command, { signal }), remaining(clock, deadline), clock, signal);
        if (res.code === 0) {
          const boot = BOOT_ID_RE.exec(res.stdout)?.[1];
          if (boot && boot !== known) await opts.cloudInitBoot?.done(boot);
          // the key this connection's server presented is final when cloud-init's wait was skipped
          // (this boot was recorded done) or when, cloud-init done, it is one of the guest's host keys
          const skipped = /^rc=0 done$/m.test(res.stdout);
          return ready(skipped || (hostKey !== undefined && hostKeysOf(res.stdout).includes(hostKey.toString('base64'))));
        }
        if (res.code === 127) {
          throw new BackendError(
            'CloudInitMissing',
            `cloud-init is not installed in the guest on ${where}, but the VM uses a cloud-init seed: use a cloud image`,
          );
        }
        if (res.code === 1 || res.code === 2) {
          const long = await execOnClient(client, target, 'cloud-init status --long', { signal }).catch((e: Error) => ({
            code: -1,
            stdout: '',
            stderr: e.message,
          }));
          const kind = res.code === 2 ? 'finished with recoverable errors' : 'failed';
          throw new BackendError(
            'CloudInitFailed',
            `cloud-init ${kind} in the guest on ${where} (cloud-init status exit ${res.code}); ` +
              `see /var/log/cloud-init.log in the guest:\n${(long.stdout + long.stderr).trimEnd()}`,
          );
        }
        // Any other exit (sshd killed the session with a signal, ...): retry.
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (!isTransient(err)) throw err;
        // The session or connection dropped (sshd restarted): reconnect and wait again.
      }
      if (remaining(clock, deadline) <= 0) {
        throw new BackendError(
          'CloudInitTimeout',
          `SSH login on ${where} works but cloud-init did not finish within ${Math.round(limitMs / 1000)} s: ` +
            `run "cloud-init status --long" in the guest (tend ssh) or read its serial console log`,
        );
      }
      await clock.sleep(Math.min(retry, remaining(clock, deadline)), signal);
      client.on('error', () => {});
      client.end();
      client = await login().catch((err: unknown) => {
        if (err instanceof TendError && err.reason === 'SshLoginFailed') {
          throw new BackendError(
            'CloudInitTimeout',
            `SSH on ${where} went away while waiting for cloud-init and did not come back in time: ${err.message}`,
            { cause: err },
          );
        }
        throw err;
      });
    }
  } finally {
    if (!kept) {
      client.on('error', () => {});
      client.end();
    }
  }
}

/** Races `p` against the deadline; a timeout rejects with a transient SshTimeout. */
async function withDeadline<T>(p: Promise<T>, ms: number, clock: Clock, signal?: AbortSignal): Promise<T> {
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([
      p,
      clock.sleep(ms, ctl.signal).then(() => {
        throw new BackendError('SshTimeout', `no answer within ${ms} ms`);
      }),
    ]);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    ctl.abort();
  }
}
