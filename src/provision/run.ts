/**
 * Provisioning, the last reconcile step (design §5): the steps not yet recorded as succeeded on
 * the VM's disk run in order over one SSH connection, each recorded only after it succeeded.
 * Shell steps run inline (`sh -ec`) or as an uploaded script; file steps upload a file or a
 * folder over SFTP to a temp path, then move it into place (with sudo when the user cannot write
 * the destination). Output goes live to `onOutput` and to `provision.log`.
 *
 * Step identities (src/provision/cache.ts) hash the content of scripts and uploads: they are
 * computed once per converge. `pending` (the host-side check) computes them and keeps them for
 * the `run` of the same VM spec that follows; `run` computes them only when nothing was kept.
 */
import { appendFile } from 'node:fs/promises';
import { statSync, readdirSync } from 'node:fs';
import { basename, posix } from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import type { Project, ProvisionStep, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { projectDir, vmFile } from '../state/paths.js';
import { readInstanceId } from '../state/instance-id.js';
import { execOnClient, shellQuote, type SshTarget } from '../ssh/exec.js';
import { firstStepToRun, stepHashes } from './cache.js';
import { readRecord, recordPath, writeRecord, type ProvisionRecord } from './record.js';

export interface ProvisionerOptions {
  stateRoot: string;
  /**
   * An authenticated connection to the VM (host key checked) and where it goes, owned by the run
   * from then on (it ends it): the readiness wait's connection when that was kept for this run.
   */
  open(project: Project, vm: VmSpec, signal: AbortSignal | undefined): Promise<{ client: Client; target: SshTarget }>;
  /** live output, one line at a time */
  say(vm: string, line: string, stream?: 'stdout' | 'stderr' | 'status'): void;
  /** step identities (tests count the calls) */
  hashes?: (steps: readonly ProvisionStep[]) => string[];
}

export interface Provisioner {
  /** Host-side check (no SSH): is any step new or changed since the recorded successes? */
  pending(project: Project, vm: VmSpec): Promise<boolean>;
  /** Runs the steps from the first one not recorded (all of them with `force`). */
  run(project: Project, vm: VmSpec, opts: { force: boolean }, signal?: AbortSignal): Promise<void>;
}

export function createProvisioner(o: ProvisionerOptions): Provisioner {
  const hashesOf = o.hashes ?? ((steps: readonly ProvisionStep[]) => stepHashes(steps));
  // identities computed by `pending`, kept for the `run` of the same spec in the same converge
  const kept = new WeakMap<VmSpec, string[]>();

  async function state(project: Project, vm: VmSpec, force: boolean, hashes: string[]) {
    const projDir = projectDir(o.stateRoot, project.name, project.dir);
    const path = recordPath(projDir, vm.name);
    const instanceId = await readInstanceId(projDir, vm.name);
    const old = await readRecord(path);
    const recorded = !force && old && old.instanceId === instanceId ? old.steps : [];
    return { projDir, path, instanceId, old, start: firstStepToRun(hashes, recorded) };
  }

  return {
    async pending(project, vm) {
      const hashes = hashesOf(vm.provision);
      kept.set(vm, hashes);
      const { start } = await state(project, vm, false, hashes);
      return start < hashes.length;
    },

    async run(project, vm, { force }, signal) {
      const hashes = kept.get(vm) ?? hashesOf(vm.provision);
      kept.delete(vm);
      const { projDir, path, instanceId, old, start } = await state(project, vm, force, hashes);
      const record: ProvisionRecord = { instanceId, steps: hashes.slice(0, start) };
      if (start >= hashes.length) {
        if (!old || old.steps.length !== record.steps.length || old.instanceId !== instanceId) await writeRecord(path, record);
        return;
      }
      await writeRecord(path, record);
      const { client, target } = await o.open(project, vm, signal);
      const logPath = vmFile(projDir, vm.name, 'provisionLog');
      const log = (line: string) => appendFile(logPath, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
      try {
        for (let i = start; i < vm.provision.length; i++) {
          signal?.throwIfAborted();
          const step = vm.provision[i];
          const title = `step ${i + 1}/${vm.provision.length}: ${describeStep(step)}`;
          o.say(vm.name, title);
          await log(`--- ${title}`);
          const tail: string[] = [];
          const onData = (stream: 'stdout' | 'stderr') => (b: Buffer) => {
            for (const line of b.toString('utf8').split('\n')) {
              if (line === '') continue;
              tail.push(line);
              if (tail.length > 20) tail.shift();
              o.say(vm.name, line, stream);
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
          await writeRecord(path, record);
        }
      } finally {
        client.on('error', () => {});
        client.end();
      }
    },
  };
}

export function describeStep(step: ProvisionStep): string {
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
