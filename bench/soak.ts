/**
 * Soak (issue 13 §2): the built `tend watch` over 20 VMs (fake QEMU, the loopback sshd as every
 * guest) for TEND_SOAK_MINUTES (default 10) minutes, with a file save every 5 s (one VM's memory
 * changes: a restart with new settings) and a QEMU SIGKILLed every 30 s. Bars:
 *  - RSS of the watch process flat: growth from the first to the last minute ≤ 10 % ("ms" = %);
 *  - every kill repaired (a new QEMU for that VM within 15 s): misses < 1;
 *  - every save applied (that VM's QEMU runs with the new memory before the next save is due + 10 s): misses < 1.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chaosProject, chaosYaml, killAll, processesOf, tendAsync, startFakeGuest } from '../test/integration/chaos-harness.js';
import { ensureBuilt } from '../test/integration/cli-harness.js';
import type { Bench, BenchRow } from './lib.js';

const VMS = 20;
const SAVE_EVERY_MS = 5000;
const KILL_EVERY_MS = 30_000;

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** -m of the VM's QEMU now, or null when none runs. */
function qemuMemory(pid: number): number | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return Number(argv[argv.indexOf('-m') + 1]);
  } catch {
    return null;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

async function soak(): Promise<BenchRow[]> {
  ensureBuilt();
  const minutes = Number(process.env.TEND_SOAK_MINUTES ?? 10);
  const work = mkdtempSync(join(tmpdir(), 'tend-soak-'));
  const sshd = await startFakeGuest(work);
  const p = chaosProject(sshd, VMS, { name: 'soak' });
  const memory = new Map(p.names.map((n) => [n, 128]));
  let watchPid = 0;
  const watch = tendAsync(['watch'], p, { onStart: (pid) => (watchPid = pid) });
  const samples: { at: number; kib: number }[] = [];
  let saves = 0;
  let savesMissed = 0;
  let kills = 0;
  let killsMissed = 0;
  const pending: Promise<void>[] = [];
  try {
    const allUp = await until(() => p.names.every((n) => (processesOf(p).qemu.get(n)?.length ?? 0) === 1), 300_000);
    if (!allUp) throw new Error('the 20 VMs did not all start');
    const t0 = Date.now();
    const end = t0 + minutes * 60_000;
    let nextSave = t0 + SAVE_EVERY_MS;
    let nextKill = t0 + KILL_EVERY_MS;
    let nextSample = t0;
    while (Date.now() < end) {
      const now = Date.now();
      if (now >= nextSample) {
        samples.push({ at: now - t0, kib: rssKiB(watchPid) });
        nextSample += 5000;
      }
      if (now >= nextSave) {
        nextSave += SAVE_EVERY_MS;
        const vm = p.names[saves % VMS] as string;
        const want = memory.get(vm) === 128 ? 144 : 128;
        memory.set(vm, want);
        saves++;
        writeFileSync(join(p.cwd, 'tend.yaml'), chaosYaml('soak', sshd, p.names, { memory: (n) => memory.get(n) ?? 128 }));
        pending.push(
          until(() => {
            const q = processesOf(p).qemu.get(vm) ?? [];
            return q.length === 1 && qemuMemory(q[0] as number) === want;
          }, SAVE_EVERY_MS + 10_000).then((ok) => {
            // a later save of the same VM (20 saves later) cannot interfere: 100 s apart
            if (!ok) savesMissed++;
          }),
        );
      }
      if (now >= nextKill) {
        nextKill += KILL_EVERY_MS;
        const vm = p.names[(kills * 7 + 3) % VMS] as string;
        const before = processesOf(p).qemu.get(vm)?.[0];
        if (before) {
          kills++;
          process.kill(before, 'SIGKILL');
          pending.push(
            until(() => {
              const q = processesOf(p).qemu.get(vm) ?? [];
              return q.length === 1 && q[0] !== before;
            }, 15_000).then((ok) => {
              if (!ok) killsMissed++;
            }),
          );
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await Promise.all(pending);
    const firstMinute = samples.filter((s) => s.at >= 0 && s.at < 60_000).map((s) => s.kib);
    const lastMinute = samples.filter((s) => s.at >= (minutes - 1) * 60_000).map((s) => s.kib);
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const growth = ((avg(lastMinute) - avg(firstMinute)) / avg(firstMinute)) * 100;
    console.error(
      `soak: ${minutes} min, RSS first minute ${(avg(firstMinute) / 1024).toFixed(1)} MiB, last minute ${(avg(lastMinute) / 1024).toFixed(1)} MiB, ` +
        `max ${(Math.max(...samples.map((s) => s.kib)) / 1024).toFixed(1)} MiB; saves ${saves} (${savesMissed} not applied), kills ${kills} (${killsMissed} not repaired)`,
    );
    return [
      { name: `soak: watch RSS growth over ${minutes} min, 20 VMs (%; "ms" = %)`, measuredMs: growth, targetMs: 10, runs: samples.length },
      { name: `soak: QEMU kills not repaired (of ${kills}; "ms" = count)`, measuredMs: killsMissed, targetMs: 1, runs: kills },
      { name: `soak: file saves not applied (of ${saves}; "ms" = count)`, measuredMs: savesMissed, targetMs: 1, runs: saves },
    ];
  } finally {
    if (watchPid) process.kill(watchPid, 'SIGTERM');
    await watch;
    killAll(p);
    await sshd.dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

export const bench: Bench = {
  name: 'soak',
  description: 'tend watch over 20 VMs for 10 min: a save every 5 s, a QEMU kill every 30 s (RSS flat, all repaired and applied)',
  run: soak,
};
