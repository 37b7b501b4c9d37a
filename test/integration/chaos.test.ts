/**
 * Chaos (issue 13 §2): `tend up`, `down`, `down --destroy` and `watch` SIGKILLed at ≥ 50 random
 * points (seeded: TEND_CHAOS_SEED, default below; every kill point is printed so a failure can be
 * replayed), against the built CLI, the fake QEMU and a loopback sshd as every guest. Two VMs,
 * each with a host folder (so a virtiofsd per VM). After each kill the same command (for watch:
 * `up`) is run once more, and then:
 *  - it succeeded, in bounded time (no stale lock to wait out);
 *  - exactly one QEMU per VM when up (no duplicate), none when down; virtiofsd only beside a
 *    running QEMU (no orphan helper), none after down;
 *  - no lock left; `ps` agrees with the processes; a stopped VM is never READY.
 * Trials run back to back on one project, so each starts from whatever the previous left.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestSshd } from '../helpers/sshd.js';
import { ensureBuilt } from './cli-harness.js';
import { assertEndState, chaosProject, killAll, tendAsync, startFakeGuest, type ChaosProject } from './chaos-harness.js';

const SEED = Number(process.env.TEND_CHAOS_SEED ?? 20261202);
const KILLS = Number(process.env.TEND_CHAOS_KILLS ?? 50);

/** mulberry32: a small seeded PRNG, so a seed replays the same kill points. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let work: string;
let sshd: TestSshd;
let p: ChaosProject;

before(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tend-chaos-'));
  sshd = await startFakeGuest(work);
  p = chaosProject(sshd, 2, { hostFolder: true });
});

after(async () => {
  if (p) killAll(p);
  await sshd?.dispose();
  await rm(work, { recursive: true, force: true });
});

type Op = 'up' | 'down' | 'down --destroy' | 'watch';
/** how long each command takes here at most (ms): kill points are drawn below it */
const SPAN: Record<Op, number> = { up: 2500, down: 1500, 'down --destroy': 1500, watch: 3000 };

test(
  `${KILLS} SIGKILLs of up/down/down --destroy/watch at random points (seed ${SEED}) leave nothing the next command cannot fix`,
  { timeout: 600_000 },
  async () => {
    const rand = prng(SEED);
    const ops: Op[] = ['up', 'down', 'up', 'watch', 'down --destroy', 'up', 'watch', 'down'];
    const log: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const op = ops[Math.floor(rand() * ops.length)] as Op;
      const killAt = Math.floor(rand() * SPAN[op]);
      const point = `kill ${i + 1}/${KILLS}: \`tend ${op}\` SIGKILLed after ${killAt} ms (seed ${SEED})`;
      log.push(point);
      console.log(point);
      const killed = await tendAsync(op.split(' '), p, { killAfterMs: killAt });
      assert.ok(killed.signal === 'SIGKILL' || killed.code === 0, `${point}: ended ${killed.code} ${killed.signal}\n${killed.stderr}`);

      const next = op === 'watch' ? 'up' : op;
      const t0 = Date.now();
      const again = await tendAsync(next.split(' '), p);
      const took = Date.now() - t0;
      assert.equal(again.code, 0, `${point}; then \`tend ${next}\` failed:\n${again.stderr}`);
      assert.ok(took < 20_000, `${point}; then \`tend ${next}\` took ${took} ms`);
      assert.doesNotMatch(again.stderr, /\n\s+at \S+ \(|TypeError|Unhandled/, `${point}: crash in the next command`);
      assertEndState(p, next === 'up' ? 'running' : next === 'down' ? 'stopped' : 'destroyed', point, next === 'up' ? 1 : 0);
    }
    assert.equal(log.length, KILLS);
  },
);
