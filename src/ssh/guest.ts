/**
 * The SSH implementation of the controller's `Guest`: staged readiness here; provisioning, the
 * last reconcile step, is src/provision/run.ts (given this module's connection).
 *
 * Readiness ends with two steps after the SSH stages (banner, login, cloud-init; src/ssh/ready.ts):
 * the guest's host key is pinned (src/ssh/known-hosts.ts; every later connection of tend must
 * present it), then the healthcheck, when declared, runs with compose semantics
 * (src/ssh/healthcheck.ts). So Ready means healthy, which is what depends_on waits for.
 *
 * One connection serves it all when it can (issue 15 §3b): the one the SSH stages ended on, when
 * its host key is final (checked against the pin like any other), carries the clock step, the
 * healthcheck and, when the controller says provisioning follows, the provision steps.
 */
import type { Client } from 'ssh2';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { Clock, Guest } from '../../schemas/ports.js';
import { systemClock } from '../state/clock.js';
import { BackendError, TendError } from '../../schemas/errors.js';
import { projectDir, vmDir, vmFile } from '../state/paths.js';
import { readFile } from 'node:fs/promises';
import { readJson, writeFileAtomic } from '../state/atomic.js';
import { validatePortRecord } from '../state/validators.generated.js';
import type { PortRecord } from '../qemu/ports.js';
import { readInstanceId } from '../state/instance-id.js';
import { createProvisioner } from '../provision/run.js';
import { execOnClient, sshConnect, type SshTarget } from './exec.js';
import { openReadySsh, type GuestPaths, type SshReady, type SshStage } from './ready.js';
import { consoleHintAfterMs, silenceHint, watchConsoleSilence, type SilenceWatch } from './silence.js';
import { describeTest, waitHealthy, type HealthProbe } from './healthcheck.js';
import { hostAlias, hostKeyCheck, type HostKeyCheck } from './known-hosts.js';
import { sshLogin, tapReadiness, tapSshTarget } from './target.js';
import { jumpOf } from './jump.js';
import { readBackendRecord } from '../backend/record.js';
import { stageTimeoutMs, type Stage, type StageTimeouts } from '../timeouts.js';

/**
 * Which kind of guest output a line is: a command's stdout/stderr (provisioning), a readiness
 * stage starting (`status`), or a hint that the wait looks stuck (`warning`).
 */
export type GuestStream = 'stdout' | 'stderr' | 'status' | 'warning';

export interface SshGuestOptions {
  stateRoot: string;
  env?: NodeJS.ProcessEnv;
  /** live output of provisioning and readiness progress, one line at a time */
  onOutput?: (vm: string, line: string, stream: GuestStream) => void;
  /**
   * stage time limits from the command's flags, in ms; a stage without one takes the VM's
   * `timeouts`, then the environment, then the default (src/timeouts.ts)
   */
  timeouts?: StageTimeouts;
  /** time source for the healthcheck's interval and start period (tests) */
  clock?: Clock;
  /** where guests keep cloud-init's run state and sshd's host keys (tests); src/ssh/ready.ts */
  guestPaths?: GuestPaths;
}

/** Where and how to reach a VM over SSH, from its state folder. */
export async function sshTarget(stateRoot: string, project: Project, vm: VmSpec, env: NodeJS.ProcessEnv = process.env): Promise<SshTarget> {
  // TAP: no forwarded port; the guest's own address, found by its MAC (src/ssh/target.ts)
  if (vm.network.mode === 'tap') return tapSshTarget(stateRoot, project, vm, env);
  const projDir = projectDir(stateRoot, project.name, project.dir);
  const ports = await readJson<PortRecord>(vmFile(projDir, vm.name, 'ports'), validatePortRecord);
  const ssh = ports?.ssh;
  const m = ssh ? /^(.*):(\d+)$/.exec(ssh) : null;
  if (!m) throw new BackendError('NoSshPort', `${vm.name} has no SSH port recorded: is it running? (tend ps)`);
  const host = m[1] === '0.0.0.0' ? '127.0.0.1' : m[1];
  // a VM on a remote libvirt host: its forward listens there, reached through that host
  const rec = await readBackendRecord(projDir, vm.name);
  const jump = rec?.backend === 'libvirt' && rec.uri ? jumpOf(rec.uri, env) : null;
  return { host, port: Number(m[2]), ...sshLogin(stateRoot, project, vm), ...(jump ? { jump } : {}) };
}

/** Watches the VM's console log while its SSH banner is awaited; null when there is none to watch. */
async function consoleSilenceWatch(
  stateRoot: string,
  project: Project,
  vm: VmSpec,
  env: NodeJS.ProcessEnv,
  clock: Clock,
  say: (line: string) => void,
): Promise<SilenceWatch | null> {
  const afterMs = consoleHintAfterMs(env);
  if (afterMs === null) return null;
  const projDir = projectDir(stateRoot, project.name, project.dir);
  const ports = await readJson<PortRecord>(vmFile(projDir, vm.name, 'ports'), validatePortRecord).catch(() => undefined);
  const screen = vm.graphics !== 'none' && ports?.[vm.graphics] ? `${vm.graphics} ${ports[vm.graphics]}` : null;
  return watchConsoleSilence({
    consoleLog: vmFile(projDir, vm.name, 'consoleLog'),
    afterMs,
    clock,
    onSilent: (seconds) => say(silenceHint(vm, seconds, screen)),
  });
}

/**
 * How long the connection a readiness wait ended on is kept for the provisioning that follows it
 * (normally a few milliseconds later); unused by then, it is closed and provisioning connects anew.
 */
const HANDOFF_MS = 5_000;

function endClient(client: Client): void {
  client.on('error', () => {});
  client.end();
}

export function createSshGuest(opts: SshGuestOptions): Guest {
  const env = opts.env ?? process.env;
  const limit = (stage: Stage, vm: VmSpec): number => stageTimeoutMs(stage, vm, opts.timeouts, env);
  const say = (vm: string, line: string, stream: GuestStream = 'status') => opts.onOutput?.(vm, line, stream);
  const handoff = createHandoff(HANDOFF_MS);
  const keyOf = (project: Project, vm: VmSpec): string => `${projectDir(opts.stateRoot, project.name, project.dir)}\0${vm.name}`;
  const provisioner = createProvisioner({
    stateRoot: opts.stateRoot,
    say,
    // the readiness wait's connection when it was kept for this (one SSH connection per run)
    open: async (project, vm, signal) => {
      const kept = handoff.take(keyOf(project, vm));
      if (kept) return kept;
      const target = await sshTarget(opts.stateRoot, project, vm, env);
      return { target, client: await connectGuest(opts.stateRoot, project, vm, { signal, env, target }) };
    },
  });

  return {
    async waitReady(project, vm, signal, o) {
      // TAP: the guest's address is looked up within the banner stage, as it takes a DHCP lease
      const tap = vm.network.mode === 'tap' ? tapReadiness(opts.stateRoot, project, vm, env, (line) => say(vm.name, line)) : null;
      const target = tap ? tap.target : await sshTarget(opts.stateRoot, project, vm, env);
      const stageText: Record<SshStage, string> = {
        banner: tap ? tap.waiting : `waiting for SSH on ${target.host}:${target.port}${target.jump ? ` on ${target.jump.label}` : ''}`,
        login: `logging in as ${target.user}`,
        'cloud-init': 'waiting for cloud-init to finish',
      };
      const bootRecord = vmFile(projectDir(opts.stateRoot, project.name, project.dir), vm.name, 'cloudInitDone');
      // A guest silent on its console and on SSH for a while gets a hint line (src/ssh/silence.ts).
      const silence = await consoleSilenceWatch(opts.stateRoot, project, vm, env, opts.clock ?? systemClock, (line) =>
        say(vm.name, line, 'warning'),
      );
      // Each stage has its own time limit, counted from the stage's start.
      let ready: SshReady;
      try {
        ready = await openReadySsh({
          ...target,
          ...(signal ? { signal } : {}),
          timeoutMs: limit('ssh', vm),
          loginTimeoutMs: limit('login', vm),
          cloudInitTimeoutMs: limit('cloudInit', vm),
          cloudInit: vm.cloudInit !== null,
          cloudInitBoot: {
            recorded: await readFile(bootRecord, 'utf8').then(
              (t) => t.trim(),
              () => null,
            ),
            done: (boot) => writeFileAtomic(bootRecord, `${boot}\n`),
          },
          ...(tap ? { locate: tap.locate } : {}),
          ...(opts.guestPaths ? { guestPaths: opts.guestPaths } : {}),
          onStage: (s) => {
            if (s !== 'banner') silence?.stop();
            say(vm.name, stageText[s]);
          },
        });
      } finally {
        silence?.stop();
      }
      // The guest is up and cloud-init is done: pin (or check) its host key. The readiness
      // connection is checked and kept when its key is final (no cloud-init, this boot already
      // recorded done, or the guest lists the key among its host keys now that cloud-init is
      // done: src/ssh/ready.ts); otherwise a new connection is.
      const reconnect = () => connectGuest(opts.stateRoot, project, vm, { signal, env, target });
      let client: Client | undefined;
      if (!ready.hostKeyFinal) {
        endClient(ready.client);
        client = await reconnect();
      } else {
        try {
          await checkPresentedKey(await pinCheck(opts.stateRoot, project, vm, target, true), ready.hostKey);
        } catch (err) {
          endClient(ready.client);
          throw err;
        }
        client = ready.client;
      }
      try {
        // restored from a saved state: its clock stood still while it was saved
        if (o?.restored) await stepClock(client, target, vm.name, say, signal);
        const hc = vm.healthcheck;
        if (hc) {
          say(vm.name, `running healthcheck "${describeTest(hc.test)}"`);
          const probe = guestProbe(reconnect, target, client);
          client = undefined;
          try {
            await waitHealthy(hc, probe.run, {
              clock: opts.clock ?? systemClock,
              vm: vm.name,
              ...(signal ? { signal } : {}),
              onAttempt: (a) => {
                if (a.ok) say(vm.name, 'healthy');
                else {
                  const why = a.code === null ? 'no result' : `exit status ${a.code}`;
                  say(
                    vm.name,
                    `healthcheck attempt ${a.attempt} failed (${why})${a.counted ? `, ${a.failures}/${hc.retries}` : ', within start_period'}`,
                  );
                }
              },
            });
          } catch (err) {
            if (err instanceof BackendError && err.reason === 'HealthcheckFailed') {
              throw new BackendError('HealthcheckFailed', `${vm.name}: ${err.message}`, { cause: err });
            }
            throw err;
          } finally {
            client = probe.take();
          }
        }
        // provisioning follows at once: it runs on this connection (issue 15 §3b)
        if (o?.provisionNext && client) {
          handoff.keep(keyOf(project, vm), client, target);
          client = undefined;
        }
      } finally {
        if (client) endClient(client);
      }
    },

    provisionPending: (project, vm) => provisioner.pending(project, vm),
    async provision(project, vm, o, signal) {
      try {
        await provisioner.run(project, vm, o, signal);
      } finally {
        // a connection kept for a run that had nothing to do
        handoff.drop(keyOf(project, vm));
      }
    },
  };
}

interface Handoff {
  /** keep `client` for `key` until taken, replaced, or `ms` have passed (then it is ended) */
  keep(key: string, client: Client, target: SshTarget): void;
  /** the client kept for `key`, now owned by the caller */
  take(key: string): { client: Client; target: SshTarget } | undefined;
  /** end the client kept for `key`, if any */
  drop(key: string): void;
}

/**
 * Connections handed from a readiness wait to the provisioning of the same VM. Every kept client
 * is ended unless taken: a replaced or expired one at once (ssh2's keepalive timer and socket
 * would otherwise keep the process alive), a taken one by its new owner.
 */
function createHandoff(ms: number): Handoff {
  const kept = new Map<string, { client: Client; target: SshTarget; timer: NodeJS.Timeout }>();
  const take = (key: string) => {
    const k = kept.get(key);
    if (!k) return undefined;
    kept.delete(key);
    clearTimeout(k.timer);
    return { client: k.client, target: k.target };
  };
  const drop = (key: string): void => {
    const k = take(key);
    if (k) endClient(k.client);
  };
  return {
    keep(key, client, target) {
      drop(key);
      const entry = { client, target, timer: setTimeout(() => drop(key), ms) };
      // gone while kept (the guest stopped): forget it, provisioning connects anew
      client.once('close', () => {
        if (kept.get(key) === entry) take(key);
      });
      kept.set(key, entry);
    },
    take,
    drop,
  };
}

/**
 * Step the guest's clock to the host's (over SSH, with sudo: the images tend boots have no guest
 * agent channel). A failure is reported, not fatal: the guest runs, its clock is late.
 */
async function stepClock(
  client: Client,
  target: SshTarget,
  name: string,
  say: (vm: string, line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const now = (Date.now() / 1000).toFixed(3);
  const r = await execOnClient(client, target, `sudo -n date -u -s @${now} >/dev/null`, signal ? { signal } : {}).catch((e: Error) => ({
    code: -1,
    stdout: '',
    stderr: e.message,
  }));
  if (r.code === 0) say(name, 'guest clock set to the host time');
  else say(name, `could not set the guest clock after the restore (${String(r.stderr).trim() || `exit ${r.code}`})`);
}

/**
 * An authenticated connection to a ready guest whose host key matches the pin (a first key, or
 * the first after a new disk, is pinned unless `pinNew` is false). HostKeyChanged when it does not match.
 */
export async function connectGuest(
  stateRoot: string,
  project: Project,
  vm: VmSpec,
  o: {
    signal?: AbortSignal | undefined;
    env?: NodeJS.ProcessEnv;
    target?: SshTarget;
    /** false: check an existing pin but pin nothing new (`exec`, `cp`: the guest may not be Ready yet) */
    pinNew?: boolean;
  } = {},
): Promise<Client> {
  const { signal } = o;
  // a caller that already resolved the target passes it: no second port-file read or address lookup
  const target = o.target ?? (await sshTarget(stateRoot, project, vm, o.env));
  const check = await pinCheck(stateRoot, project, vm, target, o.pinNew ?? true);
  let client: Client;
  try {
    client = await sshConnect(target, { ...(signal ? { signal } : {}), hostVerifier: check.verifier });
  } catch (err) {
    await check.settle();
    throw err;
  }
  try {
    await check.settle();
  } catch (err) {
    client.on('error', () => {});
    client.end();
    throw err;
  }
  return client;
}

/** The host-key check of one connection to the VM (its pin, src/ssh/known-hosts.ts). */
async function pinCheck(stateRoot: string, project: Project, vm: VmSpec, target: SshTarget, pinNew: boolean): Promise<HostKeyCheck> {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  return hostKeyCheck(vmFile(projDir, vm.name, 'knownHosts'), await readInstanceId(projDir, vm.name), hostAlias(project.name, vm.name), {
    pinNew,
    where: `${vm.name} (${target.host}:${target.port})`,
  });
}

/**
 * The check of a key an open connection's server presented: the same verdict its handshake would
 * have had with the verifier (HostKeyChanged on a mismatch, a new key pinned). Nothing the
 * connection returned is trusted before this passed.
 */
async function checkPresentedKey(check: HostKeyCheck, key: Buffer): Promise<void> {
  check.verifier(key);
  await check.settle();
}

const TRANSIENT = new Set(['SshConnectFailed', 'SshSessionLost', 'SshTimeout']);

/**
 * Healthcheck runs on one connection (`first`, else opened on the first attempt), reopened after a
 * timeout or a drop. `take` hands the connection it ends on to the caller.
 */
function guestProbe(
  connect: () => Promise<Client>,
  target: SshTarget,
  first?: Client,
): { run: HealthProbe; take: () => Client | undefined } {
  let client: Client | undefined = first;
  const drop = (): void => {
    if (client) endClient(client);
    client = undefined;
  };
  const run: HealthProbe = async (command, timeoutMs, signal) => {
    try {
      client ??= await connect();
    } catch (err) {
      if (signal?.aborted || !(err instanceof TendError) || !TRANSIENT.has(err.reason)) throw err;
      return { code: null, output: err.message };
    }
    const output: Buffer[] = [];
    const ctl = new AbortController();
    const timedOut = new Error('healthcheck timed out');
    const timer = setTimeout(() => ctl.abort(timedOut), timeoutMs);
    const onAbort = (): void => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await execOnClient(client, target, command, {
        signal: ctl.signal,
        onStdout: (b) => output.push(b),
        onStderr: (b) => output.push(b),
      });
      return { code: r.code, output: Buffer.concat(output).toString('utf8') };
    } catch (err) {
      // the session may be stuck (timeout) or gone: start from a fresh connection next time
      drop();
      if (ctl.signal.reason === timedOut) return { code: null, output: Buffer.concat(output).toString('utf8') };
      if (signal?.aborted || !(err instanceof TendError) || !TRANSIENT.has(err.reason)) throw err;
      return { code: null, output: err.message };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  };
  const take = (): Client | undefined => {
    const c = client;
    client = undefined;
    return c;
  };
  return { run, take };
}

/** The VM's folder, for callers that show where its logs are. */
export function guestPaths(stateRoot: string, project: Project, vm: string): { dir: string; provisionLog: string } {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  return { dir: vmDir(projDir, vm), provisionLog: vmFile(projDir, vm, 'provisionLog') };
}
