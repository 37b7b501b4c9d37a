/**
 * The SSH implementation of the controller's `Guest`: staged readiness, and provisioning as the
 * last reconcile step with the layer cache of design §5 (src/provision/cache.ts).
 *
 * The provisioning record (`provision.json`) names the disk it belongs to (the VM's instance-id,
 * which changes only with a new disk), so a new disk resets it. A step is recorded only after it
 * succeeded.
 *
 * Readiness ends with two steps after waitForSsh (banner, login, cloud-init): the guest's host
 * key is pinned (src/ssh/known-hosts.ts; every later connection of tend must present it), then
 * the healthcheck, when declared, runs with compose semantics (src/ssh/healthcheck.ts). So Ready
 * means healthy, which is what depends_on waits for.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { basename, posix } from 'node:path';
import { statSync, readdirSync } from 'node:fs';
import type { Client, SFTPWrapper } from 'ssh2';
import type { Project, ProvisionStep, VmSpec } from '../../schemas/model.js';
import type { Clock, Guest } from '../../schemas/ports.js';
import { systemClock } from '../state/clock.js';
import { BackendError, TendError } from '../../schemas/errors.js';
import { projectDir, vmDir, vmFile } from '../state/paths.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { firstStepToRun, stepHashes } from '../provision/cache.js';
import { execOnClient, shellQuote, sshConnect, type SshTarget } from './exec.js';
import { waitForSsh, type SshStage } from './ready.js';
import { describeTest, waitHealthy, type HealthProbe } from './healthcheck.js';
import { hostAlias, hostKeyCheck } from './known-hosts.js';
import { sshLogin, tapReadiness, tapSshTarget } from './target.js';
import { stageTimeoutMs, type Stage, type StageTimeouts } from '../timeouts.js';

export interface SshGuestOptions {
  stateRoot: string;
  env?: NodeJS.ProcessEnv;
  /** live output of provisioning and readiness progress, one line at a time */
  onOutput?: (vm: string, line: string, stream: 'stdout' | 'stderr' | 'status') => void;
  /**
   * stage time limits from the command's flags, in ms; a stage without one takes the VM's
   * `timeouts`, then the environment, then the default (src/timeouts.ts)
   */
  timeouts?: StageTimeouts;
  /** time source for the healthcheck's interval and start period (tests) */
  clock?: Clock;
}

interface ProvisionRecord {
  /** instance-id of the disk these steps ran on */
  instanceId: string;
  /** chained step identities recorded as succeeded, in order */
  steps: string[];
}

/** Where and how to reach a VM over SSH, from its state folder. */
export async function sshTarget(stateRoot: string, project: Project, vm: VmSpec, env: NodeJS.ProcessEnv = process.env): Promise<SshTarget> {
  // TAP: no forwarded port; the guest's own address, found by its MAC (src/ssh/target.ts)
  if (vm.network.mode === 'tap') return tapSshTarget(stateRoot, project, vm, env);
  const projDir = projectDir(stateRoot, project.name, project.dir);
  const ports = await readJson<Record<string, string>>(vmFile(projDir, vm.name, 'ports'));
  const ssh = ports?.ssh;
  const m = ssh ? /^(.*):(\d+)$/.exec(ssh) : null;
  if (!m) throw new BackendError('NoSshPort', `${vm.name} has no SSH port recorded: is it running? (tend ps)`);
  const host = m[1] === '0.0.0.0' ? '127.0.0.1' : m[1];
  return { host, port: Number(m[2]), ...sshLogin(stateRoot, project, vm) };
}

export function createSshGuest(opts: SshGuestOptions): Guest {
  const env = opts.env ?? process.env;
  const limit = (stage: Stage, vm: VmSpec): number => stageTimeoutMs(stage, vm, opts.timeouts, env);
  const say = (vm: string, line: string, stream: 'stdout' | 'stderr' | 'status' = 'status') => opts.onOutput?.(vm, line, stream);

  return {
    async waitReady(project, vm, signal) {
      // TAP: the guest's address is looked up within the banner stage, as it takes a DHCP lease
      const tap = vm.network.mode === 'tap' ? tapReadiness(opts.stateRoot, project, vm, env, (line) => say(vm.name, line)) : null;
      const target = tap ? tap.target : await sshTarget(opts.stateRoot, project, vm, env);
      const stageText: Record<SshStage, string> = {
        banner: tap ? tap.waiting : `waiting for SSH on ${target.host}:${target.port}`,
        login: `logging in as ${target.user}`,
        'cloud-init': 'waiting for cloud-init to finish',
      };
      // Each stage has its own time limit, counted from the stage's start.
      await waitForSsh({
        ...target,
        ...(signal ? { signal } : {}),
        timeoutMs: limit('ssh', vm),
        loginTimeoutMs: limit('login', vm),
        cloudInitTimeoutMs: limit('cloudInit', vm),
        cloudInit: vm.cloudInit !== null,
        ...(tap ? { locate: tap.locate } : {}),
        onStage: (s) => say(vm.name, stageText[s]),
      });
      // The guest is up and cloud-init is done: pin (or check) its host key.
      const pinned = await connectGuest(opts.stateRoot, project, vm, { signal, env, target });
      pinned.on('error', () => {});
      pinned.end();
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

    // Host-side check (no SSH): is any step new or changed since the recorded successes?
    async provisionPending(project, vm) {
      const { hashes, recorded } = await provisionState(opts.stateRoot, project, vm, false);
      return firstStepToRun(hashes, recorded) < hashes.length;
    },

    async provision(project, vm, { force }, signal) {
      const projDir = projectDir(opts.stateRoot, project.name, project.dir);
      const logPath = vmFile(projDir, vm.name, 'provisionLog');
      const { hashes, recorded, old, instanceId, recordPath } = await provisionState(opts.stateRoot, project, vm, force);
      const start = firstStepToRun(hashes, recorded);
      const record: ProvisionRecord = { instanceId, steps: hashes.slice(0, start) };
      if (start >= hashes.length) {
        if (!old || old.steps.length !== record.steps.length || old.instanceId !== instanceId) await writeJsonAtomic(recordPath, record);
        return;
      }
      await writeJsonAtomic(recordPath, record);
      const target = await sshTarget(opts.stateRoot, project, vm, env);
      const client = await connectGuest(opts.stateRoot, project, vm, { signal, env, target });
      const log = (line: string) => appendFile(logPath, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
      try {
        for (let i = start; i < vm.provision.length; i++) {
          signal?.throwIfAborted();
          const step = vm.provision[i];
          const title = `step ${i + 1}/${vm.provision.length}: ${describeStep(step)}`;
          say(vm.name, title);
          await log(`--- ${title}`);
          const tail: string[] = [];
          const onData = (stream: 'stdout' | 'stderr') => (b: Buffer) => {
            for (const line of b.toString('utf8').split('\n')) {
              if (line === '') continue;
              tail.push(line);
              if (tail.length > 20) tail.shift();
              say(vm.name, line, stream);
              void log(`[${stream}] ${line}`);
            }
          };
          const code = await runStep(client, target, step, i, { signal, onStdout: onData('stdout'), onStderr: onData('stderr') });
          if (code !== 0) {
            await log(`--- ${title} failed with exit status ${code}`);
            throw new BackendError(
              'ProvisionStepFailed',
              `${vm.name}: provision ${title} failed with exit status ${code}${tail.length ? `; last output:\n  ${tail.slice(-10).join('\n  ')}` : ''}`,
            );
          }
          record.steps.push(hashes[i]);
          await writeJsonAtomic(recordPath, record);
        }
      } finally {
        client.end();
      }
    },
  };
}

async function readInstanceId(projDir: string, vm: string): Promise<string> {
  return (await readFile(vmFile(projDir, vm, 'instanceId'), 'utf8').catch(() => '')).trim();
}

/**
 * An authenticated connection to a ready guest whose host key matches the pin (a first key, or
 * the first after a new disk, is pinned). HostKeyChanged when it does not match.
 */
export async function connectGuest(
  stateRoot: string,
  project: Project,
  vm: VmSpec,
  o: { signal?: AbortSignal | undefined; env?: NodeJS.ProcessEnv; target?: SshTarget } = {},
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
      pinNew: true,
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

/** The step identities and the record that applies to the VM's current disk. */
async function provisionState(stateRoot: string, project: Project, vm: VmSpec, force: boolean) {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  const recordPath = vmFile(projDir, vm.name, 'provision');
  const instanceId = await readInstanceId(projDir, vm.name);
  const hashes = stepHashes(vm.provision);
  const old = await readJson<ProvisionRecord>(recordPath);
  const valid = old && old.instanceId === instanceId && Array.isArray(old.steps);
  const recorded = !force && valid ? old.steps : [];
  return { hashes, recorded, old, instanceId, recordPath };
}

function describeStep(step: ProvisionStep): string {
  if (step.kind === 'file') return `upload ${basename(step.source)} → ${step.destination}`;
  if ('script' in step) return `script ${basename(step.script)}`;
  const first = step.inline[0];
  return `shell "${first.length > 50 ? `${first.slice(0, 47)}...` : first}"${step.inline.length > 1 ? ` (+${step.inline.length - 1} lines)` : ''}`;
}

interface RunOpts {
  signal: AbortSignal | undefined;
  onStdout: (b: Buffer) => void;
  onStderr: (b: Buffer) => void;
}

async function runStep(client: Client, target: SshTarget, step: ProvisionStep, index: number, o: RunOpts): Promise<number> {
  const exec = async (command: string) =>
    (await execOnClient(client, target, command, { onStdout: o.onStdout, onStderr: o.onStderr, ...(o.signal ? { signal: o.signal } : {}) }))
      .code;
  if (step.kind === 'shell' && 'inline' in step) {
    return exec(`sh -ec ${shellQuote(step.inline.join('\n'))}`);
  }
  const sftp = await openSftp(client);
  try {
    if (step.kind === 'shell') {
      const remote = `/tmp/tend-provision-${index + 1}.sh`;
      await putFile(sftp, step.script, remote, 0o755);
      return exec(shellQuote(remote));
    }
    // A file upload lands via a temp path, then moves into place with sudo when the user cannot
    // write the destination directly (system paths such as /etc).
    const tmp = `/tmp/tend-upload-${index + 1}-${Date.now()}`;
    await putTree(sftp, step.source, tmp);
    const dest = shellQuote(step.destination);
    return exec(
      `set -e; d=$(dirname ${dest}); if mkdir -p "$d" 2>/dev/null && [ -w "$d" ]; then rm -rf ${dest}; mv ${shellQuote(tmp)} ${dest}; ` +
        `else sudo -n mkdir -p "$d"; sudo -n rm -rf ${dest}; sudo -n mv ${shellQuote(tmp)} ${dest}; fi`,
    );
  } finally {
    sftp.end();
  }
}

function openSftp(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) =>
    client.sftp((err, sftp) =>
      err ? reject(new BackendError('SftpFailed', `cannot open SFTP: ${err.message}`, { cause: err })) : resolve(sftp),
    ),
  );
}

function putFile(sftp: SFTPWrapper, local: string, remote: string, mode?: number): Promise<void> {
  return new Promise((resolve, reject) =>
    sftp.fastPut(local, remote, mode === undefined ? {} : { mode }, (err) =>
      err ? reject(new BackendError('UploadFailed', `cannot upload ${local} to ${remote}: ${err.message}`, { cause: err })) : resolve(),
    ),
  );
}

async function putTree(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const st = statSync(local);
  if (!st.isDirectory()) return putFile(sftp, local, remote, st.mode & 0o777);
  await new Promise<void>((resolve, reject) =>
    sftp.mkdir(remote, (err) => (err ? reject(new BackendError('UploadFailed', `cannot create ${remote}: ${err.message}`)) : resolve())),
  );
  for (const name of readdirSync(local)) await putTree(sftp, `${local}/${name}`, posix.join(remote, name));
}

/** The VM's folder, for callers that show where its logs are. */
export function guestPaths(stateRoot: string, project: Project, vm: string): { dir: string; provisionLog: string } {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  return { dir: vmDir(projDir, vm), provisionLog: vmFile(projDir, vm, 'provisionLog') };
}
