/**
 * `tend doctor`: what this host can do, tested for real rather than guessed. QEMU binaries and
 * versions, which accelerator runs a guest (KVM probed with a test guest, with the reason when
 * it does not work; TCG likewise), the seed (built in-process: always available), the `ssh`
 * client, and whether the state dir is writable. JSON-serialisable, plus `problems`.
 */
import { execFile } from 'node:child_process';
import { INSTALL_HINTS } from '../host/install-hints.js';
import { access, constants, mkdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { judgeKvm, probeAccel } from './accel.js';
import { findOvmf } from './firmware.js';

export interface ToolReport {
  found: boolean;
  path: string | null;
  version: string | null;
}

export interface DoctorReport {
  qemu: ToolReport;
  qemuImg: ToolReport;
  accel: {
    kvm: { works: boolean; reason: string | null; ms: number };
    tcg: { works: boolean; reason: string | null; ms: number };
    /** what `accel: auto` picks here */
    auto: 'kvm' | 'tcg' | null;
  };
  /** NoCloud seed ISO is built in-process: no genisoimage needed */
  seed: { works: true; how: string };
  uefi: { available: boolean; code: string | null };
  ssh: ToolReport;
  stateDir: { path: string; writable: boolean; error: string | null };
  problems: string[];
}

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
  stateRoot: string;
  qemuBinary?: string;
}

/** First executable named `name` on PATH (or `name` itself when it contains a slash). */
export async function which(name: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  const candidates = name.includes('/')
    ? [name]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

function firstLine(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 10000 }, (err, stdout, stderr) => {
      const out =
        `${stdout}\n${stderr}`
          .split('\n')
          .map((l) => l.trim())
          .find(Boolean) ?? null;
      resolve(err && !out ? null : out);
    });
  });
}

async function tool(name: string, versionArgs: string[], env: NodeJS.ProcessEnv): Promise<ToolReport> {
  const path = await which(name, env);
  if (!path) return { found: false, path: null, version: null };
  return { found: true, path, version: await firstLine(path, versionArgs, env) };
}

export async function doctor(opts: DoctorOptions): Promise<DoctorReport> {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const [qemu, qemuImg, ssh] = await Promise.all([
    tool(opts.qemuBinary ?? 'qemu-system-x86_64', ['--version'], env),
    tool('qemu-img', ['--version'], env),
    tool('ssh', ['-V'], env),
  ]);
  if (!qemu.found) problems.push(`qemu-system-x86_64 not found on PATH (${INSTALL_HINTS['qemu-system-x86_64']})`);
  if (!qemuImg.found) problems.push(`qemu-img not found on PATH (${INSTALL_HINTS['qemu-img']})`);
  if (!ssh.found) problems.push(`ssh client not found on PATH: \`tend ssh\` needs it (${INSTALL_HINTS.ssh})`);

  type Verdict = DoctorReport['accel']['kvm'];
  const none: Verdict = { works: false, reason: 'QEMU is not installed', ms: 0 };
  let kvm = none;
  let tcg = none;
  if (qemu.path) {
    const probe = { binary: qemu.path, env, fresh: true };
    const t = await probeAccel('tcg', probe);
    tcg = { works: t.ok, reason: t.reason, ms: t.ms };
    const k = await judgeKvm(probe, t);
    kvm = { works: k.ok, reason: k.reason, ms: k.ms };
    if (!t.ok) problems.push(t.reason ?? 'TCG does not run a test guest');
    if (!k.ok && !t.ok) problems.push(k.reason ?? 'KVM does not work');
  }
  const auto = kvm.works ? 'kvm' : tcg.works ? 'tcg' : null;

  const fw = await findOvmf('uefi');
  const stateDir = { path: opts.stateRoot, writable: false, error: null as string | null };
  try {
    await mkdir(opts.stateRoot, { recursive: true, mode: 0o700 });
    const probe = join(opts.stateRoot, `.doctor-${process.pid}`);
    await writeFile(probe, 'ok', { mode: 0o600 });
    await rm(probe, { force: true });
    stateDir.writable = true;
  } catch (err) {
    stateDir.error = (err as Error).message;
    problems.push(`state dir ${opts.stateRoot} is not writable: ${stateDir.error}`);
  }
  return {
    qemu,
    qemuImg,
    accel: { kvm, tcg, auto },
    seed: { works: true, how: 'NoCloud ISO (label cidata) built in-process' },
    uefi: { available: fw !== null, code: fw?.code ?? null },
    ssh,
    stateDir,
    problems,
  };
}
