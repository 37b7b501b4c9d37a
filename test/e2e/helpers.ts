/**
 * Helpers for end-to-end tests that boot the real Debian guest image under QEMU (TCG).
 *
 * - findImage(): $TEND_E2E_IMAGE, else the cached build of scripts/build-debian-image.sh
 *   (built on first use; needs root). findStockImage(): its stock-GRUB flavour,
 *   $TEND_E2E_STOCK_IMAGE.
 * - tempProject(): a temp project dir + a temp TEND_STATE_DIR, and a cleanup that kills every
 *   QEMU whose command line mentions either of them.
 * - runCli(): runs the BUILT CLI (node dist/src/cli/main.js) with that state dir.
 * - rawQemuArgv() / bootRaw(): the hand-written QEMU command line used as the baseline for
 *   "tend up ÷ raw QEMU" in the benchmarks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'build-debian-image.sh');
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** The Debian 12 guest image for e2e tests: $TEND_E2E_IMAGE, else the cached script build. */
export async function findImage(opts: { onProgress?: (line: string) => void } = {}): Promise<string> {
  return findFlavour('tend', 'TEND_E2E_IMAGE', opts);
}

/**
 * The stock-GRUB flavour of the same image (Debian's stock grub-pc configuration: GRUB's
 * graphical terminal, no serial GRUB terminal): $TEND_E2E_STOCK_IMAGE, else the cached build.
 */
export async function findStockImage(opts: { onProgress?: (line: string) => void } = {}): Promise<string> {
  return findFlavour('stock', 'TEND_E2E_STOCK_IMAGE', opts);
}

async function findFlavour(flavour: 'tend' | 'stock', envName: string, opts: { onProgress?: (line: string) => void }): Promise<string> {
  const fromEnv = process.env[envName];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`${envName}=${fromEnv} does not exist`);
    return fromEnv;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      `no ${envName} set and building one needs root: run ${BUILD_SCRIPT} --flavour ${flavour} as root and export ${envName}`,
    );
  }
  const sub = execa(BUILD_SCRIPT, ['--flavour', flavour], {
    reject: false,
    stdin: 'ignore',
    buffer: { stdout: true, stderr: false },
    stderr: 'pipe',
  });
  sub.stderr?.on('data', (b: Buffer) => opts.onProgress?.(b.toString('utf8')));
  const res = await sub;
  const path = String(res.stdout).trim().split('\n').pop() ?? '';
  if (res.exitCode !== 0 || !existsSync(path)) {
    throw new Error(`${BUILD_SCRIPT} --flavour ${flavour} failed (exit ${res.exitCode}); run it by hand to see why`);
  }
  return path;
}

export interface TempProject {
  /** the project directory (cwd for the CLI) */
  dir: string;
  /** TEND_STATE_DIR for this test */
  stateDir: string;
  /** scratch space for keys, seeds, overlays */
  scratch: string;
  /** kills leftover QEMU processes of this project and removes every temp dir */
  cleanup(): Promise<void>;
}

/** A temp project dir (optionally with files) and a temp state dir. Always call cleanup(). */
export async function tempProject(files: Record<string, string> = {}): Promise<TempProject> {
  const root = await mkdtemp(join(tmpdir(), 'tend-e2e-'));
  const dir = join(root, 'project');
  const stateDir = join(root, 'state');
  const scratch = join(root, 'scratch');
  await Promise.all([mkdir(dir), mkdir(stateDir, { mode: 0o700 }), mkdir(scratch)]);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return {
    dir,
    stateDir,
    scratch,
    async cleanup() {
      await killQemuMentioning(root);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** SIGKILLs every process named qemu* whose command line contains `needle`; returns their pids. */
export async function killQemuMentioning(needle: string): Promise<number[]> {
  const killed: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
    } catch {
      continue;
    }
    const exe = cmdline.split(' ')[0] ?? '';
    if (!/qemu/.test(exe.split('/').pop() ?? '') || !cmdline.includes(needle)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`npm run build` first) in `cwd` with TEND_STATE_DIR=`stateDir`. */
export async function runCli(
  args: string[],
  opts: { cwd: string; stateDir: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run "npm run build" first`);
  const res = await execa(process.execPath, [CLI_MAIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, TEND_STATE_DIR: opts.stateDir, NO_COLOR: '1', ...opts.env },
    stdin: 'ignore',
    reject: false,
    timeout: opts.timeoutMs ?? 600_000,
  });
  return { code: res.exitCode ?? -1, stdout: String(res.stdout), stderr: String(res.stderr) };
}

// A free loopback port and an ssh-keygen'd ed25519 pair: shared with the sshd test helper.
export { freePort, keygen as generateKey } from '../helpers/sshd.js';

type BuildIso = (label: string, files: Record<string, string | Buffer>) => Promise<Buffer> | Buffer;

/**
 * Writes a NoCloud seed ISO (label cidata). Uses tend's in-process ISO builder
 * (src/seed/iso9660.ts `buildIso`) when it exists, else cloud-localds (cloud-image-utils).
 */
export async function makeSeedIso(
  out: string,
  files: { userData: string; metaData: string; networkConfig?: string },
): Promise<'buildIso' | 'cloud-localds'> {
  const entries: Record<string, string> = { 'user-data': files.userData, 'meta-data': files.metaData };
  if (files.networkConfig) entries['network-config'] = files.networkConfig;
  const modPath = join(REPO_ROOT, 'src', 'seed', 'iso9660.ts');
  if (existsSync(modPath)) {
    const mod = (await import(modPath)) as { buildIso?: BuildIso };
    if (typeof mod.buildIso === 'function') {
      await writeFile(out, await mod.buildIso('cidata', entries));
      return 'buildIso';
    }
  }
  const ud = `${out}.user-data`;
  const md = `${out}.meta-data`;
  await writeFile(ud, files.userData);
  await writeFile(md, files.metaData);
  const args = [out, ud, md];
  if (files.networkConfig) {
    await writeFile(`${out}.network-config`, files.networkConfig);
    args.unshift(`--network-config=${out}.network-config`);
  }
  await execa('cloud-localds', args, { stdin: 'ignore' });
  return 'cloud-localds';
}

export interface RawQemuOptions {
  /** qcow2 overlay (or any writable disk) to boot */
  disk: string;
  /** NoCloud seed ISO */
  seed: string;
  /** host port forwarded to the guest's port 22 on 127.0.0.1 */
  sshPort: number;
  /** serial console output file */
  serialLog: string;
  memoryMb?: number;
  cpus?: number;
  /** optional pidfile */
  pidfile?: string;
}

/** The hand-written QEMU command line (argv, binary first): TCG, virtio disk + seed, user net with ssh hostfwd. */
export function rawQemuArgv(o: RawQemuOptions): string[] {
  const argv = [
    'qemu-system-x86_64',
    '-accel',
    'tcg',
    '-machine',
    'q35',
    '-cpu',
    'max',
    '-m',
    String(o.memoryMb ?? 1024),
    '-smp',
    String(o.cpus ?? 2),
    '-display',
    'none',
    '-no-user-config',
    '-nodefaults',
    '-serial',
    `file:${o.serialLog}`,
    '-drive',
    `file=${o.disk},if=virtio,format=qcow2`,
    '-drive',
    `file=${o.seed},if=virtio,format=raw,readonly=on`,
    '-netdev',
    `user,id=n0,hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-device',
    'virtio-rng-pci',
  ];
  if (o.pidfile) argv.push('-pidfile', o.pidfile);
  return argv;
}

/** Creates a qcow2 overlay on `base` (the base is never written). */
export async function makeOverlay(base: string, overlay: string, size?: string): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay];
  if (size) args.push(size);
  await execa('qemu-img', args, { stdin: 'ignore' });
}

/** Starts the raw QEMU command line; the caller kills the child (or tempProject().cleanup does). */
export function bootRaw(o: RawQemuOptions): ChildProcess {
  const [bin, ...args] = rawQemuArgv(o);
  const child = spawn(bin as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.setEncoding('utf8');
  return child;
}

/**
 * Follows `tend watch --json`: each JSON line of its stdout is pushed onto `events` as it
 * arrives (other lines are log lines), and its stderr is kept for failure messages.
 */
export function followWatch<T>(watch: ChildProcess, events: T[]): { readonly stderr: string } {
  let buf = '';
  const out = { stderr: '' };
  watch.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        events.push(JSON.parse(line) as T);
      } catch {
        // a log line
      }
    }
  });
  watch.stderr?.on('data', (b: Buffer) => (out.stderr += b.toString()));
  return out;
}

/** A running `tend watch --json` (spawnWatch): its events as they arrive, a wait, a stop. */
export interface WatchRun<T> {
  proc: ChildProcess;
  /** its JSON-line events so far, in order */
  events: T[];
  /** its stderr so far (log lines) */
  readonly stderr: string;
  /**
   * Resolves once `cond()` holds (checked every `pollMs`, default 200); rejects naming `what` when
   * watch exits first (with its stderr) or after `ms` (default 900 s, with the events so far).
   */
  until(cond: () => boolean, what: string, o?: { ms?: number; pollMs?: number }): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 60 s); resolves with its exit code (null: killed). */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Spawns the built `tend watch --json` (and `args`) in `p` and follows it (followWatch); with a
 * test context `t`, a watch still running when the test ends is SIGKILLed.
 */
export function spawnWatch<T extends { reason: string }>(
  p: TempProject,
  t?: { after(fn: () => void): void },
  args: string[] = [],
): WatchRun<T> {
  const proc = spawn(process.execPath, [CLI_MAIN, 'watch', '--json', ...args], {
    cwd: p.dir,
    env: { ...process.env, TEND_STATE_DIR: p.stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t?.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const events: T[] = [];
  const out = followWatch(proc, events);
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc,
    events,
    get stderr() {
      return out.stderr;
    },
    async until(cond, what, o = {}) {
      const deadline = Date.now() + (o.ms ?? 900_000);
      while (!cond()) {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`watch exited (${proc.exitCode ?? proc.signalCode}) while waiting for ${what}: ${out.stderr.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${events.map((e) => e.reason).join(', ')}`);
        await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
      }
    },
    async stop(graceMs = 60_000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
