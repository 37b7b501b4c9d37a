/**
 * The built CLI against the fake QEMU and a loopback sshd as every guest (chaos-harness):
 *  - `tend stop`, `start` and `restart` take several VM names, as `tend down` does: those VMs act,
 *    the others are left as they were;
 *  - the accelerator probe's verdict ("KVM: /dev/kvm opens but ...", why TCG is used) is said
 *    once, when it was found out, even with several VMs starting in one command, and not again
 *    at each start while it is cached (then only in the debug log, `-v`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestSshd } from '../helpers/sshd.js';
import { ensureBuilt } from './cli-harness.js';
import { assertEndState, chaosProject, killAll, ps, startFakeGuest, tendAsync, type ChaosProject } from './chaos-harness.js';

let work: string;
let sshd: TestSshd;
const projects: ChaosProject[] = [];

before(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tend-several-'));
  sshd = await startFakeGuest(work);
});

after(async () => {
  for (const p of projects) killAll(p);
  await sshd?.dispose();
  await rm(work, { recursive: true, force: true });
});

const pids = (p: ChaosProject): Record<string, number | null> => Object.fromEntries(ps(p).map((r) => [r.name, r.pid]));
const states = (p: ChaosProject): Record<string, string> => Object.fromEntries(ps(p).map((r) => [r.name, r.state]));

test('stop, start and restart take several VMs; the others are left alone', { timeout: 120_000 }, async () => {
  const p = chaosProject(sshd, 3, { name: 'several' });
  projects.push(p);
  const up = await tendAsync(['up'], p);
  assert.equal(up.code, 0, up.stderr);
  assertEndState(p, 'running', 'after up');
  const before = pids(p);

  const stop = await tendAsync(['stop', 'web0', 'web1', '--timeout', '1'], p);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /^web0: Stopped/m);
  assert.match(stop.stdout, /^web1: Stopped/m);
  assert.deepEqual(states(p), { web0: 'stopped', web1: 'stopped', web2: 'running' });
  assert.equal(pids(p).web2, before.web2, 'web2 was not touched');

  const start = await tendAsync(['start', 'web0', 'web1'], p);
  assert.equal(start.code, 0, start.stderr);
  assertEndState(p, 'running', 'after start web0 web1');
  assert.equal(pids(p).web2, before.web2, 'web2 was not touched');
  const started = pids(p);

  const restart = await tendAsync(['restart', 'web0', 'web1', '--timeout', '1', '--json'], p);
  assert.equal(restart.code, 0, restart.stderr);
  const r = JSON.parse(restart.stdout) as { ok: boolean; vms: Record<string, { state: string }> };
  assert.equal(r.ok, true);
  assert.deepEqual(Object.keys(r.vms).sort(), ['web0', 'web1']);
  assertEndState(p, 'running', 'after restart web0 web1');
  const restarted = pids(p);
  assert.notEqual(restarted.web0, started.web0, 'web0 runs in a new QEMU');
  assert.notEqual(restarted.web1, started.web1, 'web1 runs in a new QEMU');
  assert.equal(restarted.web2, before.web2, 'web2 was not touched');

  // one name: the one-VM result as before
  const one = await tendAsync(['stop', 'web2', '--timeout', '1', '--json'], p);
  assert.equal(one.code, 0, one.stderr);
  assert.equal((JSON.parse(one.stdout) as { vm: string }).vm, 'web2');
  // a name the project does not have: nothing is stopped
  const bad = await tendAsync(['stop', 'web0', 'nope'], p);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /nope/);
  assert.equal(states(p).web0, 'running', 'web0 was not stopped');
});

test("the accelerator probe's verdict is said once when probed, not at each start while cached", { timeout: 120_000 }, async () => {
  const p = chaosProject(sshd, 2, { name: 'accel' });
  projects.push(p);
  // accel auto: the fake QEMU's KVM probe guest never runs (as on a nested-virtualisation host)
  const file = join(p.cwd, 'tend.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replaceAll('accel: tcg', 'accel: auto'));
  const said = (s: string) => (s.match(/KVM: [^\n]*/g) ?? []).length;

  const up = await tendAsync(['up'], p);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(said(up.stderr), 1, `one line for two VMs started together:\n${up.stderr}`);
  assert.doesNotMatch(up.stderr, /DEBUG/);

  const restart = await tendAsync(['restart', 'web0', 'web1', '--timeout', '1'], p);
  assert.equal(restart.code, 0, restart.stderr);
  assert.equal(said(restart.stderr), 0, `the cached verdict is not said again at info level:\n${restart.stderr}`);
  const verbose = await tendAsync(['-v', 'restart', 'web0', '--timeout', '1'], p);
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.equal(said(verbose.stderr), 1, `with -v, the debug log has it:\n${verbose.stderr}`);
});
