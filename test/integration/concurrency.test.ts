/**
 * Concurrency (issue 13 §2), the built CLI against the fake QEMU and a loopback sshd as every
 * guest: 10 concurrent `up`; 5 `up` racing 5 `down`; `watch` plus one-shot commands. The project
 * lock serialises them: every command succeeds, the end state is consistent (one QEMU per running
 * VM, no orphan, no lock left, ps agrees), and a command refused by the lock names its holder.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockPath } from '../../src/state/lock.js';
import type { TestSshd } from '../helpers/sshd.js';
import { ensureBuilt } from './cli-harness.js';
import {
  assertEndState,
  chaosProject,
  killAll,
  processesOf,
  ps,
  run,
  startFakeGuest,
  tendAsync,
  type ChaosProject,
} from './chaos-harness.js';

let work: string;
let sshd: TestSshd;
const projects: ChaosProject[] = [];

before(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tend-conc-'));
  sshd = await startFakeGuest(work);
});

after(async () => {
  for (const p of projects) killAll(p);
  await sshd?.dispose();
  await rm(work, { recursive: true, force: true });
});

function newProject(name: string): ChaosProject {
  const p = chaosProject(sshd, 2, { hostFolder: true, name });
  projects.push(p);
  return p;
}

const HOLDER = /project locked by pid (\d+) \(tend (converge|down|watch|up)[^)]*\) since \d\d:\d\d:\d\d/;

test(
  '10 concurrent `up`: all succeed, one QEMU per VM; a --no-wait up meanwhile is refused naming one of them',
  { timeout: 180_000 },
  async () => {
    const p = newProject('ten');
    const pids: number[] = [];
    const ups = Array.from({ length: 10 }, () => tendAsync(['up'], p, { onStart: (pid) => pids.push(pid) }));
    // while they queue on the lock, one that will not wait
    let refused: { code: number | null; stderr: string } | null = null;
    let finished = false;
    const all = Promise.all(ups).finally(() => (finished = true));
    const seen: string[] = [];
    while (!refused && !finished) {
      const r = await tendAsync(['--no-wait', 'up'], p);
      seen.push(`${r.code}`);
      if (r.code === 4) refused = r;
      else assert.equal(r.code, 0, r.stderr);
    }
    const results = await all;
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.ok(refused, `a --no-wait up was refused while the others held the lock (exit codes: ${seen.join(' ')})`);
    const m = HOLDER.exec(refused.stderr);
    assert.ok(m, `the refusal names the holder: ${refused.stderr}`);
    assert.ok(pids.includes(Number(m[1])), `the holder ${m[1]} is one of the concurrent ups (${pids.join(', ')})`);
    assertEndState(p, 'running', '10 concurrent ups', 1);
  },
);

test('5 `up` racing 5 `down`: all succeed, serialised; the end state is all up or all down, consistent', { timeout: 180_000 }, async () => {
  const p = newProject('race');
  assert.equal(run(['up'], p).code, 0);
  const cmds = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? 'up' : 'down'));
  const results = await Promise.all(cmds.map((c) => tendAsync([c], p)));
  results.forEach((r, i) => assert.equal(r.code, 0, `${cmds[i]}: ${r.stderr}`));
  const rows = ps(p);
  const states = new Set(rows.map((r) => r.state));
  assert.equal(states.size, 1, `both VMs in the same state: ${rows.map((r) => `${r.name}=${r.state}`).join(', ')}`);
  const state = [...states][0] as string;
  assert.ok(state === 'running' || state === 'stopped', state);
  assertEndState(p, state as 'running' | 'stopped', 'after the race', state === 'running' ? 1 : 0);
  // and the next up settles it
  assert.equal(run(['up'], p).code, 0);
  assertEndState(p, 'running', 'up after the race', 1);
});

test(
  '`watch` plus one-shot commands: each is served between passes; down under watch stays down; no lock left',
  { timeout: 180_000 },
  async () => {
    const p = newProject('watched');
    let watchPid = 0;
    const watch = tendAsync(['watch'], p, { onStart: (pid) => (watchPid = pid) });
    const t0 = Date.now();
    while (p.names.some((n) => (processesOf(p).qemu.get(n)?.length ?? 0) !== 1)) {
      assert.ok(Date.now() - t0 < 60_000, 'watch brought the VMs up');
      await new Promise((r) => setTimeout(r, 200));
    }
    // one-shot commands alongside: all succeed
    const results = await Promise.all([tendAsync(['up'], p), tendAsync(['ps', '--json'], p), tendAsync(['stop', 'web0'], p)]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    // a second controller is refused, naming the watch
    const second = await tendAsync(['watch'], p);
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, new RegExp(`pid ${watchPid} \\(tend watch\\)`));
    assert.equal(run(['down'], p).code, 0);
    await new Promise((r) => setTimeout(r, 2000)); // watch must not undo the down
    assertEndState(p, 'stopped', 'down under watch');
    assert.equal(run(['up'], p).code, 0);
    assertEndState(p, 'running', 'up under watch', 1);
    process.kill(watchPid, 'SIGTERM');
    const w = await watch;
    assert.equal(w.code, 0, w.stderr);
    assert.equal(existsSync(lockPath(p.projDir)), false);
    assertEndState(p, 'running', 'after watch ended', 1);
  },
);
