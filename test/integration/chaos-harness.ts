/**
 * Shared by the chaos, corruption, concurrency and security suites: a project of VMs under the
 * fake qemu-system whose "guest" is a loopback sshd (the fake QEMU forwards each VM's SSH port to
 * it; a fake cloud-init, sudo and poweroff are on the sessions' PATH), the built CLI, and the
 * invariants every end state must meet: exactly one QEMU per VM that should run, no process of a
 * VM that should not (QEMU, virtiofsd, any helper), no stale lock, and READY only when observed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockPath } from '../../src/state/lock.js';
import { projectDir } from '../../src/state/paths.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';
import { CLI, project, tend, type Run } from './cli-harness.js';

export const FAKE_DIR = fileURLToPath(new URL('../fake-qemu/', import.meta.url));

/** A loopback sshd standing in for every guest, with a fake cloud-init (done at once); `users`: see startTestSshd. */
export async function startFakeGuest(work: string, o: { users?: string[]; sftpServer?: string } = {}): Promise<TestSshd> {
  const bin = join(work, 'guest-bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'cloud-init'), '#!/bin/sh\necho "status: done"\nexit 0\n', { mode: 0o755 });
  writeFileSync(join(bin, 'sudo'), '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n', { mode: 0o755 });
  return startTestSshd({ pathDirs: [bin], ...o });
}

export interface ChaosProject {
  cwd: string;
  stateDir: string;
  projDir: string;
  names: string[];
  env: NodeJS.ProcessEnv;
}

/** The tend.yaml of a chaos project: VMs `names`, the SSH user/key of `sshd`, optional host folder and memory per VM. */
export function chaosYaml(
  name: string,
  sshd: TestSshd,
  names: readonly string[],
  o: { hostFolder?: boolean; memory?: (vm: string) => number } = {},
): string {
  const services = names
    .map(
      (v) =>
        `  ${v}:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { memory_mb: ${o.memory?.(v) ?? 128} }\n    stop_grace_period: 2s\n` +
        `    ssh: { user: ${sshd.user}, private_key: ${sshd.key} }\n` +
        (o.hostFolder ? `    volumes: ["./share:/srv/share"]\n` : ''),
    )
    .join('');
  return `name: ${name}\nservices:\n${services}`;
}

/** A compose project of `n` VMs (web0..), the SSH user/key of `sshd`; `hostFolder` adds a virtiofs share to each. */
export function chaosProject(sshd: TestSshd, n: number, o: { hostFolder?: boolean; name?: string } = {}): ChaosProject {
  const name = o.name ?? 'chaos';
  const names = Array.from({ length: n }, (_, i) => `web${i}`);
  const p = project({ 'tend.yaml': chaosYaml(name, sshd, names, o) });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  if (o.hostFolder) mkdirSync(join(p.cwd, 'share'));
  const env: NodeJS.ProcessEnv = {
    PATH: `${FAKE_DIR}:${process.env.PATH ?? ''}`,
    FAKE_QEMU_MODE: '',
    FAKE_QEMU_GUEST_SSH: String(sshd.port),
    TEND_VIRTIOFSD: join(FAKE_DIR, 'virtiofsd'),
    XDG_CACHE_HOME: join(p.stateDir, '.cache'),
  };
  return { ...p, projDir: projectDir(p.stateDir, name, p.cwd), names, env };
}

/** Run the built CLI in the background; `killAfterMs`: SIGKILL it then. */
export function tendAsync(
  args: string[],
  p: ChaosProject,
  o: { killAfterMs?: number; extraEnv?: NodeJS.ProcessEnv; onStart?: (pid: number) => void } = {},
): Promise<Run & { signal: string | null }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...p.env, ...o.extraEnv, TEND_STATE_DIR: p.stateDir };
    delete env.NODE_OPTIONS;
    const c = spawn(process.execPath, [CLI, ...args], { cwd: p.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (c.pid !== undefined) o.onStart?.(c.pid);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = o.killAfterMs === undefined ? undefined : setTimeout(() => c.kill('SIGKILL'), o.killAfterMs);
    c.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function run(args: string[], p: ChaosProject): Run {
  return tend(args, p, p.env);
}

function notZombie(pid: string): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live processes of the project: QEMUs (by the pidfile in their argv) and helpers (by their owner mark). */
export function processesOf(p: ChaosProject): { qemu: Map<string, number[]>; helpers: Map<string, number[]> } {
  const qemu = new Map<string, number[]>();
  const helpers = new Map<string, number[]>();
  const vmsPrefix = join(p.projDir, 'vms') + '/';
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes('qemu-system'))) {
        const pf = argv[argv.indexOf('-pidfile') + 1] ?? '';
        if (pf.startsWith(vmsPrefix) && notZombie(e)) {
          const vm = pf.slice(vmsPrefix.length).split('/')[0] as string;
          qemu.set(vm, [...(qemu.get(vm) ?? []), Number(e)]);
        }
        continue;
      }
      const mark = readFileSync(`/proc/${e}/environ`, 'utf8')
        .split('\0')
        .find((kv) => kv.startsWith(`TEND_HELPER_OF=${vmsPrefix}`));
      if (mark && notZombie(e)) {
        const vm = mark.slice(`TEND_HELPER_OF=${vmsPrefix}`.length).split('/')[0] as string;
        helpers.set(vm, [...(helpers.get(vm) ?? []), Number(e)]);
      }
    } catch {
      // gone meanwhile, or another user's
    }
  }
  return { qemu, helpers };
}

/** SIGKILL every process of the project (test clean-up). */
export function killAll(p: ChaosProject): void {
  const { qemu, helpers } = processesOf(p);
  for (const pids of [...qemu.values(), ...helpers.values()])
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
}

interface PsRow {
  name: string;
  state: string;
  ready: boolean;
  pid: number | null;
}

export function ps(p: ChaosProject): PsRow[] {
  const r = run(['ps', '--json'], p);
  assert.equal(r.code, 0, `ps: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { vms: PsRow[] }).vms;
}

/**
 * The end state after a command that should have everything running (`up`) or nothing (`down`):
 * one QEMU per VM (or none), helpers only of running VMs (`helpersPerVm` each), no lock left, and
 * ps agreeing with the processes. `context` goes into every message (seed, kill point).
 */
export function assertEndState(p: ChaosProject, want: 'running' | 'stopped' | 'destroyed', context: string, helpersPerVm = 0): void {
  const { qemu, helpers } = processesOf(p);
  for (const vm of p.names) {
    const q = qemu.get(vm) ?? [];
    const h = helpers.get(vm) ?? [];
    if (want === 'running') {
      assert.equal(q.length, 1, `${context}: ${vm} has ${q.length} QEMU processes (${q.join(', ')})`);
      assert.equal(h.length, helpersPerVm, `${context}: ${vm} has helpers ${h.join(', ')}`);
    } else {
      assert.deepEqual(q, [], `${context}: ${vm} still has QEMU ${q.join(', ')}`);
      assert.deepEqual(h, [], `${context}: ${vm} has orphan helpers ${h.join(', ')}`);
    }
  }
  assert.equal(existsSync(lockPath(p.projDir)), false, `${context}: the project lock is left behind`);
  const rows = ps(p);
  for (const vm of p.names) {
    const row = rows.find((r) => r.name === vm);
    if (want === 'destroyed') {
      assert.ok(!row || row.state === 'not-created', `${context}: ${vm} still listed as ${row?.state}`);
      continue;
    }
    assert.equal(row?.state, want, `${context}: ps says ${vm} is ${row?.state}`);
    if (want === 'running') assert.equal(row?.pid, qemu.get(vm)?.[0], `${context}: ps pid of ${vm}`);
    if (want !== 'running') assert.equal(row?.ready, false, `${context}: ${vm} READY while ${row?.state}`);
  }
}
