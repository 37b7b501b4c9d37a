/**
 * `tend watch` in-process against the real QEMU backend and the fake qemu-system-x86_64
 * (test/fake-qemu first on PATH), with real chokidar, real locks and a no-op Guest (the fake has
 * no sshd). Every wait polls for a condition with a generous deadline.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Guest, TendEvent } from '../../schemas/ports.js';
import type { PassReport } from '../../controllers/watch-loop.js';
import { watchCommand, type WatchCommandOptions } from '../../src/cli/commands/watch.js';
import { LockError } from '../../schemas/errors.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile } from '../../src/state/paths.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
let root: string;
let base: string;
let n = 0;
const pidsToKill = new Set<number>();

before(() => {
  root = mkdtempSync(join(tmpdir(), 'tend-watch-'));
  base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
});

after(() => {
  // every fake QEMU any test left running (VMs outlive watch by design)
  for (const f of readdirSync(root, { recursive: true }) as string[]) {
    if (!f.endsWith('qemu.pid')) continue;
    const pid = Number(readFileSync(join(root, f), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) pidsToKill.add(pid);
  }
  const ours = (pid: number): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(root); // a fake QEMU of this test file
    } catch {
      return false;
    }
  };
  for (const pid of pidsToKill) if (pidAlive(pid) && ours(pid)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const noGuest: Guest = {
  waitReady: async () => undefined,
  provision: async () => undefined,
  provisionPending: async () => false,
};

function yaml(o: { webMemory?: number; restart?: string } = {}): string {
  return `name: demo
services:
  web:
    image: ${base}
    accel: tcg
    vm: { vcpu: 1, memory_mb: ${o.webMemory ?? 256} }
${o.restart ? `    restart: ${o.restart}\n` : ''}  db:
    image: ${base}
    accel: tcg
    vm: { vcpu: 1, memory_mb: 256 }
`;
}

interface Running {
  dir: string;
  stateDir: string;
  projDir: string;
  file: string;
  events: TendEvent[];
  passes: PassReport[];
  ac: AbortController;
  done: Promise<unknown>;
  fakeLog: string;
  reasons: (vm?: string) => string[];
  pid: (vm: string) => number | null;
  starts: (vm: string) => number;
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startWatch(text: string, o: Partial<WatchCommandOptions> & { mode?: string } = {}): Promise<Running> {
  const dir = join(root, `p${++n}`);
  const stateDir = join(root, `s${n}`);
  execFileSync('mkdir', ['-p', dir, stateDir]);
  const file = join(dir, 'tend.yaml');
  writeFileSync(file, text);
  const fakeLog = join(root, `fake${n}.log`);
  const env = {
    ...process.env,
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    FAKE_QEMU_LOG: fakeLog,
    FAKE_QEMU_MODE: o.mode ?? '',
    TEND_STATE_DIR: stateDir,
  };
  const events: TendEvent[] = [];
  const passes: PassReport[] = [];
  const ac = new AbortController();
  let ready = false;
  const done = watchCommand({
    cwd: dir,
    env,
    stateDir,
    signal: ac.signal,
    guest: noGuest,
    resync: '0',
    onEvent: (e) => events.push(e),
    onPass: (p) => passes.push(p),
    onReady: () => (ready = true),
    ...o,
  });
  done.catch(() => undefined);
  const projDir = projectDir(stateDir, 'demo', dir);
  const pid = (vm: string): number | null => {
    try {
      const p = Number(readFileSync(vmFile(projDir, vm, 'pid'), 'utf8').trim());
      return Number.isInteger(p) && pidAlive(p) ? p : null;
    } catch {
      return null;
    }
  };
  const starts = (vm: string): number => {
    const text = existsSync(fakeLog) ? readFileSync(fakeLog, 'utf8') : '';
    return text.split('\n').filter((l) => l && !l.includes('isa-debug-exit') && l.includes(`/vms/${vm}/`)).length;
  };
  const r: Running = {
    dir,
    stateDir,
    projDir,
    file,
    events,
    passes,
    ac,
    done,
    fakeLog,
    reasons: (vm) => events.filter((e) => vm === undefined || e.vm === vm).map((e) => e.reason),
    pid,
    starts,
  };
  await until(() => ready || passes.length > 0, 'watch ready');
  await until(() => passes.length >= 1, 'the first converge');
  for (const vm of ['web', 'db']) {
    const p = pid(vm);
    if (p) pidsToKill.add(p);
  }
  return r;
}

/** Options for a one-shot command (`tend stop`, `tend up`, ...) run next to the watch, as a user would. */
function oneShot(r: Running) {
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, TEND_STATE_DIR: r.stateDir };
  return { cwd: r.dir, env, stateDir: r.stateDir, guest: noGuest };
}

async function stop(r: Running): Promise<void> {
  r.ac.abort();
  await r.done;
  for (const vm of ['web', 'db']) {
    const p = r.pid(vm);
    if (p) pidsToKill.add(p);
  }
}

test('an edit reconciles only the affected VM; an atomic save is seen once', async () => {
  const r = await startWatch(yaml());
  assert.ok(r.pid('web') && r.pid('db'), 'both VMs run after the first converge');
  const dbPid = r.pid('db');
  const webStarts = r.starts('web');
  const dbStarts = r.starts('db');
  // an editor's atomic save: write a temp file, rename it over tend.yaml
  writeFileSync(`${r.file}.tmp`, yaml({ webMemory: 512 }));
  renameSync(`${r.file}.tmp`, r.file);
  await until(() => r.passes.length >= 2, 'a pass after the save');
  await until(() => r.starts('web') === webStarts + 1 && r.pid('web') !== null, 'web restarted with the new memory');
  assert.deepEqual(r.passes[1].names, ['web']);
  assert.equal(r.starts('db'), dbStarts, 'db is not touched');
  assert.equal(r.pid('db'), dbPid);
  const lastWeb = readFileSync(r.fakeLog, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l.includes('/vms/web/'))
    .pop()!;
  assert.ok((JSON.parse(lastWeb) as { argv: string[] }).argv.includes('512'), 'started with -m 512');
  // the save was one change: one FilesChanged, one pass (give late duplicates time to show)
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(r.reasons().filter((x) => x === 'FilesChanged').length, 1);
  assert.equal(r.passes.length, 2);
  await stop(r);
});

test('an invalid edit causes no backend call and is reported with file:line:column', async () => {
  const r = await startWatch(yaml());
  const before = readFileSync(r.fakeLog, 'utf8');
  const pids = [r.pid('web'), r.pid('db')];
  writeFileSync(r.file, yaml().replace('memory_mb: 256', 'memory_mb: 2G'));
  await until(() => r.reasons().includes('ProjectInvalid'), 'ProjectInvalid');
  const e = r.events.find((x) => x.reason === 'ProjectInvalid')!;
  assert.match(e.message, new RegExp(`${r.file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: error:`));
  // deleting the file is reported too, not taken as "delete every VM"
  rmSync(r.file);
  await until(() => r.reasons().includes('ProjectFileMissing'), 'ProjectFileMissing');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(readFileSync(r.fakeLog, 'utf8'), before, 'no QEMU started');
  assert.deepEqual([r.pid('web'), r.pid('db')], pids, 'nothing stopped');
  assert.equal(r.passes.length, 1, 'no pass ran');
  await stop(r);
});

test('a killed VM is restarted within a second, a crash loop backs off', async () => {
  const r = await startWatch(yaml(), { backoff: { baseMs: 1500, factor: 2, maxMs: 10_000, healthyMs: 60_000 }, exitPollMs: 100 });
  const first = r.pid('web')!;
  const t0 = Date.now();
  process.kill(first, 'SIGKILL');
  await until(() => r.pid('web') !== null && r.pid('web') !== first, 'web restarted');
  const restartMs = Date.now() - t0;
  const exited = r.events.find((e) => e.reason === 'VmExited' && e.vm === 'web')!;
  assert.match(exited.message, /killed or crashed/);
  // generous on a loaded machine; the bench measures the real bar
  assert.ok(restartMs < 10_000, `restart took ${restartMs} ms`);
  // the second crash in a row (once the restart has finished) waits for the backoff
  await until(() => r.passes.length >= 2, 'the restart pass finished');
  const second = r.pid('web')!;
  pidsToKill.add(second);
  process.kill(second, 'SIGKILL');
  await until(() => r.reasons('web').includes('BackOff'), 'BackOff');
  assert.match(r.events.find((e) => e.reason === 'BackOff')!.message, /restarting in 1\.5s/);
  const backoffAt = Date.now();
  await until(() => r.pid('web') !== null && r.pid('web') !== second, 'restart after the backoff');
  assert.ok(Date.now() - backoffAt >= 1000, 'it waited for the backoff');
  assert.ok(r.pid('db'), 'db untouched');
  await stop(r);
});

test('restart policy "no": a guest poweroff leaves the VM stopped', async () => {
  const r = await startWatch(yaml({ restart: 'no' }), { exitPollMs: 100 });
  const pid = r.pid('web')!;
  const starts = r.starts('web');
  process.kill(pid, 'SIGTERM'); // QEMU quits cleanly on SIGTERM
  await until(() => r.reasons('web').includes('VmExited'), 'VmExited');
  assert.match(r.events.find((e) => e.reason === 'VmExited')!.message, /not restarted/);
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(r.starts('web'), starts);
  assert.equal(r.pid('web'), null);
  await stop(r);
});

test('a second watch on the same project fails at once naming the holder', async () => {
  const r = await startWatch(yaml());
  const t0 = Date.now();
  await assert.rejects(
    watchCommand({
      cwd: r.dir,
      stateDir: r.stateDir,
      env: { ...process.env, TEND_STATE_DIR: r.stateDir },
      signal: new AbortController().signal,
      guest: noGuest,
    }),
    (e: unknown) => e instanceof LockError && new RegExp(`already watched by pid ${process.pid} \\(tend watch\\)`).test(e.message),
  );
  assert.ok(Date.now() - t0 < 5000);
  await stop(r);
});

test('stopping mid-provision: the step is cancelled, VMs keep running, no lock or temp file is left', async () => {
  let provisionSignal: AbortSignal | undefined;
  let reached = false;
  const hanging: Guest = {
    waitReady: async () => undefined,
    provisionPending: async () => true,
    provision: (_p, _vm, _o, signal) =>
      new Promise<void>((_, reject) => {
        provisionSignal = signal;
        reached = true;
        signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true });
      }),
  };
  const dir = join(root, `p${++n}`);
  const stateDir = join(root, `s${n}`);
  execFileSync('mkdir', ['-p', dir, stateDir]);
  writeFileSync(join(dir, 'tend.yaml'), yaml().replace('  db:', '    provision: [{ shell: "sleep 1000" }]\n  db:'));
  const ac = new AbortController();
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, TEND_STATE_DIR: stateDir };
  const done = watchCommand({ cwd: dir, env, stateDir, signal: ac.signal, guest: hanging, resync: '0' });
  done.catch(() => undefined);
  await until(() => reached, 'provisioning in flight');
  const t0 = Date.now();
  ac.abort();
  await done;
  assert.ok(Date.now() - t0 < 2000, `watch ended in ${Date.now() - t0} ms`);
  assert.equal(provisionSignal?.aborted, true);
  const projDir = projectDir(stateDir, 'demo', dir);
  const alive: number[] = [];
  for (const vm of ['web', 'db']) {
    try {
      const p = Number(readFileSync(vmFile(projDir, vm, 'pid'), 'utf8').trim());
      if (pidAlive(p)) alive.push(p);
      pidsToKill.add(p);
    } catch {
      // not started
    }
  }
  assert.ok(alive.length > 0, 'the VMs are left running');
  const leftovers = readdirSync(projDir).filter((f) => /lock|\.tmp/.test(f));
  assert.deepEqual(leftovers, []);
});

test('`tend stop web` while watching keeps web stopped (it takes the lock between passes); `tend start web` clears it', async () => {
  const { stopCommand } = await import('../../src/cli/commands/stop.js');
  const { startCommand } = await import('../../src/cli/commands/start.js');
  const r = await startWatch(yaml(), { exitPollMs: 100, resync: '1s' });
  const common = { ...oneShot(r), name: 'web' };
  const stopped = await stopCommand(common);
  assert.equal(stopped.state, 'Stopped');
  const passes = r.passes.length;
  await until(() => r.passes.length >= passes + 2, 'two resyncs after the stop');
  assert.equal(r.pid('web'), null, 'watch did not undo `tend stop`');
  assert.equal(r.reasons('web').includes('VmExited'), false, 'a deliberate stop is not a crash');
  await startCommand(common);
  assert.ok(r.pid('web'));
  const started = r.pid('web')!;
  pidsToKill.add(started);
  // watch picks the started VM up (next resync) and restarts it when it is killed
  const p2 = r.passes.length;
  await until(() => r.passes.length >= p2 + 1, 'a resync after the start');
  process.kill(started, 'SIGKILL');
  await until(() => r.pid('web') !== null && r.pid('web') !== started, 'web restarted by watch');
  await stop(r);
});

test('`tend down` while watching keeps every VM down, also across resyncs; `tend up` brings them back', async () => {
  const { downCommand } = await import('../../src/cli/commands/down.js');
  const { convergeCommand } = await import('../../src/cli/commands/converge.js');
  const r = await startWatch(yaml(), { exitPollMs: 100, resync: '1s' });
  const common = oneShot(r);
  const down = await downCommand(common);
  assert.equal(down.ok, true);
  const passes = r.passes.length;
  await until(() => r.passes.length >= passes + 2, 'two resyncs after the down');
  assert.deepEqual([r.pid('web'), r.pid('db')], [null, null], 'watch did not undo `tend down`');
  assert.equal(r.reasons().includes('VmExited'), false, 'a deliberate down is not a crash');
  const up = await convergeCommand({ ...common, provision: true, recreate: false, prune: false });
  assert.equal(up.ok, true);
  for (const vm of ['web', 'db']) {
    assert.ok(r.pid(vm), `${vm} runs again after tend up`);
    pidsToKill.add(r.pid(vm)!);
  }
  await stop(r);
});

test('a VM started by a one-shot command between passes is crash-watched at once, without a resync', async () => {
  const { stopCommand } = await import('../../src/cli/commands/stop.js');
  const { startCommand } = await import('../../src/cli/commands/start.js');
  const r = await startWatch(yaml(), { exitPollMs: 100, resync: '0' });
  const common = { ...oneShot(r), name: 'web' };
  await stopCommand(common);
  // let watch handle the stop's exit (a deliberate stop: nothing to restart) before the start
  await new Promise((res) => setTimeout(res, 1500));
  await startCommand(common);
  const started = r.pid('web');
  assert.ok(started);
  pidsToKill.add(started);
  const passes = r.passes.length;
  // watch learns of the start from the project's event log (resync is off)
  await new Promise((res) => setTimeout(res, 500));
  process.kill(started, 'SIGKILL');
  await until(() => r.pid('web') !== null && r.pid('web') !== started, 'web restarted by watch');
  assert.ok(
    r.reasons('web').some((x) => x === 'VmExited' || x === 'BackOff'),
    `the kill was seen as an exit: ${r.reasons('web').join(', ')}`,
  );
  await until(() => r.passes.some((p, i) => i >= passes && p.triggers.includes('exit')), 'the restart pass, triggered by the exit');
  pidsToKill.add(r.pid('web')!);
  await stop(r);
});
