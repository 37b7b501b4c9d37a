/**
 * Issue-5 bars for `tend watch`, in-process (watchCommand), with the fake QEMU or the in-memory
 * backend:
 *  - file save → first backend call, p50 < 150 ms (debounce included): real chokidar, real
 *    locks, the real QEMU backend code driving the fake qemu-system-x86_64
 *  - QEMU killed (SIGKILL) → restart begun (first backend call for that VM), p50 < 1 s
 *  - idle watch over 20 VMs (in-memory backend, pid watch armed for all 20): CPU < 1 % of one
 *    core and RSS < 120 MB over an idle window. These two rows report percent and MiB in the
 *    "ms" columns of bench/run.ts (its rows are durations).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, Guest, VmExit } from '../schemas/ports.js';
import type { Project } from '../schemas/model.js';
import { watchCommand } from '../src/cli/commands/watch.js';
import { createQemuBackend } from '../src/qemu/backend.js';
import { pidAlive } from '../src/pid.js';
import { createPidWatcher } from '../src/watch/crashes.js';
import { projectDir, vmFile } from '../src/state/paths.js';
import { MemoryBackend } from '../test/helpers/memory-backend.js';
import { generateProject, median, nowMs, type Bench, type BenchRow } from './lib.js';

const fakeDir = fileURLToPath(new URL('../test/fake-qemu/', import.meta.url));
const noGuest: Guest = { waitReady: async () => undefined, provision: async () => undefined, provisionPending: async () => false };

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A backend that timestamps the first mutating call per VM after `mark()`. */
function recording(inner: Backend): { backend: Backend; mark: () => void; firstCall: () => { vm: string; at: number } | null } {
  let first: { vm: string; at: number } | null = null;
  const note = (vm: string): void => {
    first ??= { vm, at: nowMs() };
  };
  const backend: Backend = Object.create(inner) as Backend;
  backend.prepare = (p, vm, o, s) => (note(vm.name), inner.prepare(p, vm, o, s));
  backend.start = (p, vm, s) => (note(vm.name), inner.start(p, vm, s));
  backend.stop = (p, n, o, s) => (note(n), inner.stop(p, n, o, s));
  return { backend, mark: () => (first = null), firstCall: () => first };
}

function yaml(base: string, vms: number, memory: (i: number) => number): string {
  const lines = ['name: benchwatch', 'services:'];
  for (let i = 0; i < vms; i++)
    lines.push(`  vm${i}:`, `    image: ${base}`, '    accel: tcg', `    vm: { vcpu: 1, memory_mb: ${memory(i)} }`);
  return lines.join('\n') + '\n';
}

async function qemuBars(): Promise<BenchRow[]> {
  const root = mkdtempSync(join(tmpdir(), 'tend-bench-watch-'));
  const base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
  const dir = join(root, 'p');
  const stateDir = join(root, 's');
  execFileSync('mkdir', ['-p', dir, stateDir]);
  const file = join(dir, 'tend.yaml');
  const VMS = 5;
  writeFileSync(
    file,
    yaml(base, VMS, () => 256),
  );
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, TEND_STATE_DIR: stateDir };
  const qemu = createQemuBackend({ stateRoot: stateDir, env });
  const rec = recording(qemu);
  const ac = new AbortController();
  let passes = 0;
  const done = watchCommand({
    cwd: dir,
    env,
    stateDir,
    signal: ac.signal,
    guest: noGuest,
    backend: rec.backend,
    resync: '0',
    onPass: () => passes++,
  });
  const projDir = projectDir(stateDir, 'benchwatch', resolve(dir));
  const pidOf = (vm: string): number | null => {
    try {
      const p = Number(readFileSync(vmFile(projDir, vm, 'pid'), 'utf8').trim());
      return pidAlive(p) ? p : null;
    } catch {
      return null;
    }
  };
  try {
    await until(() => passes >= 1, 'first converge', 120_000);
    const saves: number[] = [];
    for (let run = 0; run < 7; run++) {
      const settled = passes;
      rec.mark();
      const t0 = nowMs();
      writeFileSync(
        file,
        yaml(base, VMS, (i) => (i === 0 ? 256 + 16 * (run + 1) : 256)),
      );
      await until(() => rec.firstCall() !== null, 'first backend call after a save');
      saves.push(rec.firstCall()!.at - t0);
      await until(() => passes > settled, 'the pass to finish');
    }
    const restarts: number[] = [];
    for (let i = 1; i < VMS; i++) {
      const vm = `vm${i}`;
      const pid = pidOf(vm);
      if (!pid) throw new Error(`${vm} is not running`);
      const settled = passes;
      rec.mark();
      const t0 = nowMs();
      process.kill(pid, 'SIGKILL');
      await until(() => rec.firstCall()?.vm === vm, `restart of ${vm}`);
      restarts.push(rec.firstCall()!.at - t0);
      await until(() => passes > settled, 'the restart to finish');
    }
    return [
      { name: 'watch: file save → first backend call (p50)', measuredMs: median(saves), targetMs: 150, runs: saves.length },
      { name: 'watch: QEMU killed → restart begun (p50)', measuredMs: median(restarts), targetMs: 1000, runs: restarts.length },
    ];
  } finally {
    ac.abort();
    await done.catch(() => undefined);
    for (let i = 0; i < VMS; i++) {
      const p = pidOf(`vm${i}`);
      if (p) process.kill(p, 'SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  }
}

/** The in-memory backend, plus exit watching of 20 (live) pids so the idle cost includes it. */
function idleBackend(): { backend: Backend; guest: Guest } {
  const mb = new MemoryBackend({ now: () => Date.now() });
  const pids = createPidWatcher({ isAlive: () => true });
  const backend: Backend = Object.create(mb) as Backend;
  backend.watchExit = (_p: Project, _name: string, pid: number, _onExit: (e: VmExit) => void) => pids.watch(pid, () => undefined);
  return { backend, guest: mb };
}

async function idleBars(): Promise<BenchRow[]> {
  const { dir, file } = generateProject(20);
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-bench-idle-'));
  const { backend, guest } = idleBackend();
  const ac = new AbortController();
  let passes = 0;
  const done = watchCommand({
    cwd: dir,
    file: [file],
    stateDir,
    env: { ...process.env, TEND_STATE_DIR: stateDir },
    signal: ac.signal,
    backend,
    guest,
    onPass: () => passes++,
  });
  try {
    await until(() => passes >= 1, 'first converge');
    await new Promise((r) => setTimeout(r, 3000)); // let start-up work (chokidar's first scan, lazy compiles) settle
    global.gc?.();
    const windowMs = 10_000;
    const cpu0 = process.cpuUsage();
    const t0 = nowMs();
    let rss = process.memoryUsage().rss;
    for (let waited = 0; waited < windowMs; waited += 1000) {
      await new Promise((r) => setTimeout(r, 1000));
      rss = Math.max(rss, process.memoryUsage().rss);
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = nowMs() - t0;
    const cpuPercent = ((cpu.user + cpu.system) / 1000 / wall) * 100;
    return [
      { name: 'watch: idle CPU over 20 VMs (% of a core; "ms" = %)', measuredMs: cpuPercent, targetMs: 1, runs: 1 },
      { name: 'watch: idle RSS over 20 VMs (MiB; "ms" = MiB)', measuredMs: rss / 1048576, targetMs: 120, runs: 1 },
    ];
  } finally {
    ac.abort();
    await done.catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** The idle bars run in a fresh process, so RSS is the watch's own (under tsx, which adds its compiler). */
function idleInChild(): BenchRow[] {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, TEND_BENCH_WATCH_IDLE: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '[]') as BenchRow[];
}

export const bench: Bench = {
  name: 'watch',
  description: 'tend watch: save → backend call, kill → restart, idle cost over 20 VMs',
  async run() {
    return [...(await qemuBars()), ...idleInChild()];
  },
};

if (process.env.TEND_BENCH_WATCH_IDLE === '1') {
  process.stdout.write(JSON.stringify(await idleBars()) + '\n');
}
