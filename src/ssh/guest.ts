/**
 * The SSH implementation of the controller's `Guest`: staged readiness here; provisioning, the
 * last reconcile step, is src/provision/run.ts (given this module's connection).
 *
 * Readiness ends with two steps after waitForSsh (banner, login, cloud-init): the guest's host
 * key is pinned (src/ssh/known-hosts.ts; every later connection of tend must present it), then
 * the healthcheck, when declared, runs with compose semantics (src/ssh/healthcheck.ts). So Ready
 * means healthy, which is what depends_on waits for.
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
import { waitForSsh, type SshStage } from './ready.js';
import { consoleHintAfterMs, silenceHint, watchConsoleSilence, type SilenceWatch } from './silence.js';
import { describeTest, waitHealthy, type HealthProbe } from './healthcheck.js';
import { hostAlias, hostKeyCheck } from './known-hosts.js';
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

export function createSshGuest(opts: SshGuestOptions): Guest {
  const env = opts.env ?? process.env;
  const limit = (stage: Stage, vm: VmSpec): number => stageTimeoutMs(stage, vm, opts.timeouts, env);
  const say = (vm: string, line: string, stream: GuestStream = 'status') => opts.onOutput?.(vm, line, stream);
  // The pinned connection readiness ends with, kept for the provisioning that follows at once
  // (waitReady's provisionNext): one SSH login fewer on a cold start, a second or more of a TCG
  // guest's time. Closed if nothing takes it within HANDOFF_MS.
  const handoff = new Map<string, { client: Client; target: SshTarget; timer: NodeJS.Timeout }>();
  const handoffKey = (project: Project, vm: VmSpec): string => `${project.dir}\0${project.name}\0${vm.name}`;
  const drop = (key: string): Client | undefined => {
    const h = handoff.get(key);
    if (!h) return undefined;
    handoff.delete(key);
    clearTimeout(h.timer);
    return h.client;
  };
  const keep = (project: Project, vm: VmSpec, client: Client, target: SshTarget): void => {
    const key = handoffKey(project, vm);
    close(drop(key));
    const timer = setTimeout(() => close(drop(key)), HANDOFF_MS);
    timer.unref();
    handoff.set(key, { client, target, timer });
    client.once('close', () => {
      if (handoff.get(key)?.client === client) drop(key);
    });
  };
  const take = (project: Project, vm: VmSpec, target: SshTarget): Client | undefined => {
    const key = handoffKey(project, vm);
    const h = handoff.get(key);
    if (!h) return undefined;
    const client = drop(key);
    const same =
      h.target.host === target.host &&
      h.target.port === target.port &&
      h.target.user === target.user &&
      h.target.privateKey === target.privateKey;
    if (same) return client;
    close(client);
    return undefined;
  };
  const provisioner = createProvisioner({
    stateRoot: opts.stateRoot,
    say,
    target: (project, vm) => sshTarget(opts.stateRoot, project, vm, env),
    connect: async (project, vm, target, signal) =>
      take(project, vm, target) ?? connectGuest(opts.stateRoot, project, vm, { signal, env, target }),
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
      try {
        await waitForSsh({
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
          onStage: (s) => {
            if (s !== 'banner') silence?.stop();
            say(vm.name, stageText[s]);
          },
        });
      } finally {
        silence?.stop();
      }
      // The guest is up and cloud-init is done: pin (or check) its host key.
      const pinned = await connectGuest(opts.stateRoot, project, vm, { signal, env, target });
      let kept = false;
      try {
        // restored from a saved state: its clock stood still while it was saved
        if (o?.restored) await stepClock(pinned, target, vm.name, say, signal);
        // provisioning follows at once (no healthcheck first) and has steps to run: it gets this
        // connection (`pending` is host-side, and keeps the step identities for that run)
        if (o?.provisionNext && !vm.healthcheck && vm.provision.length > 0 && (await provisioner.pending(project, vm))) {
          keep(project, vm, pinned, target);
          kept = true;
        }
      } finally {
        if (!kept) close(pinned);
      }
      const hc = vm.healthcheck;
      if (!hc) return;
      say(vm.name, `running healthcheck "${describeTest(hc.test)}"`);
      const probe = guestProbe(() => connectGuest(opts.stateRoot, project, vm, { signal, env, target }), target);
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
        probe.close();
      }
    },

    provisionPending: (project, vm) => provisioner.pending(project, vm),
    async provision(project, vm, o, signal) {
      try {
        await provisioner.run(project, vm, o, signal);
      } finally {
        // a kept connection the run did not take (nothing to run) is not left open
        close(drop(handoffKey(project, vm)));
      }
    },
  };
}

/** How long a connection kept for provisioning waits to be taken before it is closed. */
export const HANDOFF_MS = 5000;

function close(client: Client | undefined): void {
  client?.on('error', () => {});
  client?.end();
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
  const projDir = projectDir(stateRoot, project.name, project.dir);
  // a caller that already resolved the target passes it: no second port-file read or address lookup
  const target = o.target ?? (await sshTarget(stateRoot, project, vm, o.env));
  const check = await hostKeyCheck(
    vmFile(projDir, vm.name, 'knownHosts'),
    await readInstanceId(projDir, vm.name),
    hostAlias(project.name, vm.name),
    {
      pinNew: o.pinNew ?? true,
      where: `${vm.name} (${target.host}:${target.port})`,
    },
  );
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

const TRANSIENT = new Set(['SshConnectFailed', 'SshSessionLost', 'SshTimeout']);

/** Healthcheck runs on one connection, reopened after a timeout or a drop. */
function guestProbe(connect: () => Promise<Client>, target: SshTarget): { run: HealthProbe; close: () => void } {
  let client: Client | undefined;
  const drop = (): void => {
    client?.on('error', () => {});
    client?.end();
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
  return { run, close: drop };
}

/** The VM's folder, for callers that show where its logs are. */
export function guestPaths(stateRoot: string, project: Project, vm: string): { dir: string; provisionLog: string } {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  return { dir: vmDir(projDir, vm), provisionLog: vmFile(projDir, vm, 'provisionLog') };
}
