/**
 * The real QEMU backend code against the fake qemu-system-x86_64 (test/fake-qemu), which speaks
 * QMP and can be told to misbehave. Real qemu-img, real seed ISO, real key generation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { Backend } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { watchVmEvents } from '../../src/qemu/events.js';
import { projectDir, vmFile, volumePath } from '../../src/state/paths.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
let root: string;
let base: string;
let counter = 0;
const started: number[] = [];

/** The process is gone (a child of this test process may linger as a zombie until reaped). */
async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(pidAlive(pid), false, `pid ${pid} is gone`);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tend-qb-'));
  base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
});

after(async () => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await rm(root, { recursive: true, force: true });
});

interface Setup {
  backend: Backend;
  project: Project;
  vm: VmSpec;
  projDir: string;
  log: string;
  env: NodeJS.ProcessEnv;
}

function setup(mode = '', draft: Partial<VmDraft> = {}, backendOpts: { termGraceMs?: number; timeouts?: { start?: number } } = {}): Setup {
  const n = ++counter;
  const stateRoot = join(root, `s${n}`);
  const log = join(root, `fake${n}.log`);
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_LOG: log, FAKE_QEMU_MODE: mode };
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: base }, accel: 'tcg', disk: 2, ...draft } as VmDraft);
  const project: Project = { name: 'demo', dir: join(root, `p${n}`), files: [], vms: [vm], volumes: { data: { size: 1 } } };
  const backend = createQemuBackend({ stateRoot, env, ...backendOpts });
  return { backend, project, vm, projDir: projectDir(stateRoot, project.name, project.dir), log, env };
}

async function fakeRuns(log: string): Promise<{ pid: number; argv: string[] }[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { pid: number; argv: string[] });
}

async function up(s: Setup): Promise<number> {
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const r = await s.backend.start(s.project, s.vm);
  started.push(r.pid);
  return r.pid;
}

async function until(cond: () => Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('prepare is idempotent: same instance-id, same disk (inode), volumes and applied spec recorded', async () => {
  const s = setup('', { volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }] });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const disk = vmFile(s.projDir, 'web', 'disk');
  const id1 = await readFile(vmFile(s.projDir, 'web', 'instanceId'), 'utf8');
  const ino1 = (await stat(disk)).ino;
  const key1 = await readFile(vmFile(s.projDir, 'web', 'privateKey'), 'utf8');
  assert.equal((await stat(vmFile(s.projDir, 'web', 'privateKey'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(s.projDir, 'vms', 'web'))).mode & 0o777, 0o700);
  assert.ok((await stat(vmFile(s.projDir, 'web', 'seed'))).size > 0);
  assert.ok((await stat(volumePath(s.projDir, 'data'))).isFile());
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk], { encoding: 'utf8' })) as {
    'virtual-size': number;
    'backing-filename': string;
  };
  assert.equal(info['virtual-size'], 2 * 1024 ** 3, 'overlay grown to the declared disk size');
  assert.equal(info['backing-filename'], base);

  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  assert.equal(await readFile(vmFile(s.projDir, 'web', 'instanceId'), 'utf8'), id1);
  assert.equal((await stat(disk)).ino, ino1);
  assert.equal(await readFile(vmFile(s.projDir, 'web', 'privateKey'), 'utf8'), key1);

  const obs = (await s.backend.observe(s.project)).vms.web;
  assert.equal(obs.exists, true);
  assert.equal(obs.power, 'stopped');
  assert.deepEqual(obs.applied, s.vm);
  assert.ok(obs.diskImage);
  assert.deepEqual(obs.corrupt, []);

  // a larger disk grows the overlay in place; a smaller one never shrinks it
  await s.backend.prepare(s.project, { ...s.vm, disk: 3 }, { recreateDisk: false });
  await s.backend.prepare(s.project, { ...s.vm, disk: 1 }, { recreateDisk: false });
  const info2 = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk], { encoding: 'utf8' })) as { 'virtual-size': number };
  assert.equal(info2['virtual-size'], 3 * 1024 ** 3);
  assert.equal((await stat(disk)).ino, ino1);

  // recreate: a new disk and a new instance-id
  await s.backend.prepare(s.project, s.vm, { recreateDisk: true });
  assert.notEqual(await readFile(vmFile(s.projDir, 'web', 'instanceId'), 'utf8'), id1);
});

test('start → observe running; start again returns the same process; stop powers it off gracefully', async () => {
  const s = setup('', { ports: [{ hostAddress: '127.0.0.1', hostPort: null, guestPort: 80, protocol: 'tcp' }] });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const r = await s.backend.start(s.project, s.vm);
  started.push(r.pid);
  assert.equal(r.accel, 'tcg');
  assert.ok(r.sshPort > 0);
  assert.equal(r.ports.ssh, `127.0.0.1:${r.sshPort}`);
  assert.match(r.ports['80/tcp'], /^127\.0\.0\.1:\d+$/);

  const runs = await fakeRuns(s.log);
  assert.equal(runs.length, 1);
  assert.ok(
    runs[0].argv.some((a) => a.includes(vmFile(s.projDir, 'web', 'disk'))),
    'QEMU got the VM disk',
  );
  assert.ok(runs[0].argv.join(' ').includes(`hostfwd=tcp:127.0.0.1:${r.sshPort}-:22`));

  const obs = (await s.backend.observe(s.project)).vms.web;
  assert.equal(obs.power, 'running');
  assert.equal(obs.pid, r.pid);
  assert.equal(obs.accel, 'tcg');
  assert.equal(obs.sshPort, r.sshPort);
  assert.deepEqual(obs.ports, r.ports);
  assert.ok(obs.startedAt !== null && Math.abs(obs.startedAt - Date.now()) < 60000);

  const again = await s.backend.start(s.project, s.vm);
  assert.equal(again.pid, r.pid);
  assert.equal((await fakeRuns(s.log)).length, 1, 'no second QEMU');

  const t0 = Date.now();
  await s.backend.stop(s.project, 'web', { timeout: 10 });
  assert.ok(Date.now() - t0 < 5000, 'ACPI powerdown, not the grace period');
  await gone(r.pid);
  const after = (await s.backend.observe(s.project)).vms.web;
  assert.equal(after.power, 'stopped');
  assert.equal(after.pid, null);
  assert.equal(after.sshPort, null);
  await s.backend.stop(s.project, 'web', { timeout: 10 }); // no-op

  // restart keeps the allocated ports
  const r2 = await s.backend.start(s.project, s.vm);
  started.push(r2.pid);
  assert.deepEqual(r2.ports, r.ports);
  await s.backend.stop(s.project, 'web', { timeout: 10 });
});

test('video and graphics reach QEMU: the default VGA; VNC on 127.0.0.1 at a recorded, stable port shown in the ports', async () => {
  const plain = setup();
  await up(plain);
  const argv = (await fakeRuns(plain.log))[0].argv;
  assert.ok(argv.join(' ').includes('-device VGA'), argv.join(' '));
  await plain.backend.stop(plain.project, 'web', { timeout: 5 });

  const s = setup('', { video: 'virtio', graphics: 'vnc' });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const r = await s.backend.start(s.project, s.vm);
  started.push(r.pid);
  const vnc = r.ports.vnc;
  assert.match(vnc, /^127\.0\.0\.1:59\d\d$/);
  const display = Number(vnc.split(':')[1]) - 5900;
  const args = (await fakeRuns(s.log))[0].argv;
  assert.equal(args[args.indexOf('-vnc') + 1], `127.0.0.1:${display}`);
  assert.ok(args.join(' ').includes('-device virtio-vga'));
  assert.equal((await s.backend.observe(s.project)).vms.web.ports.vnc, vnc, 'observed, so ps and status show it');
  await s.backend.stop(s.project, 'web', { timeout: 5 });
  const r2 = await s.backend.start(s.project, s.vm);
  started.push(r2.pid);
  assert.equal(r2.ports.vnc, vnc, 'the same port after a restart');
  await s.backend.stop(s.project, 'web', { timeout: 5 });
});

test('a video model or display protocol this QEMU lacks fails start with a clear error, before QEMU runs', async () => {
  const s = setup('', { video: 'qxl' });
  s.env.FAKE_QEMU_NO_DEVICES = 'qxl-vga';
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  await assert.rejects(s.backend.start(s.project, s.vm), (err: unknown) => {
    assert.ok(err instanceof BackendError);
    assert.equal(err.reason, 'DisplayUnsupported');
    assert.match(
      err.message,
      /video qxl needs QEMU's qxl-vga device, which qemu-system-x86_64 does not have.*use video "vga" or "virtio" or "cirrus"/,
    );
    return true;
  });
  const spice = setup('', { graphics: 'spice' });
  spice.env.FAKE_QEMU_NO_SPICE = '1';
  await spice.backend.prepare(spice.project, spice.vm, { recreateDisk: false });
  await assert.rejects(spice.backend.start(spice.project, spice.vm), /graphics spice is not available/);
  assert.deepEqual(await fakeRuns(s.log), [], 'no QEMU was started');
  assert.deepEqual(await fakeRuns(spice.log), []);
});

test('a guest that ignores ACPI powerdown is SIGTERMed after the grace period', async () => {
  const s = setup('ignore-powerdown');
  const pid = await up(s);
  const t0 = Date.now();
  await s.backend.stop(s.project, 'web', { timeout: 0.4 });
  const took = Date.now() - t0;
  assert.ok(took >= 400, `waited the grace period (${took} ms)`);
  await gone(pid);
  const stderr = await readFile(vmFile(s.projDir, 'web', 'qemuStderr'), 'utf8');
  assert.match(stderr, /terminating on signal 15/);
});

test('a QEMU that also ignores SIGTERM is SIGKILLed', async () => {
  const s = setup('ignore-powerdown,ignore-sigterm', {}, { termGraceMs: 300 });
  const pid = await up(s);
  await s.backend.stop(s.project, 'web', { timeout: 0.2 });
  await gone(pid);
  assert.equal((await s.backend.observe(s.project)).vms.web.power, 'stopped');
});

test('a crashed QEMU is observed stopped, and the event connection reports it at once', async () => {
  const s = setup('crash-after:400');
  const pid = await up(s);
  let closedAt = 0;
  const watch = await watchVmEvents(s.projDir, 'web', { env: s.env, onEvent: () => undefined, onClose: () => (closedAt = Date.now()) });
  assert.equal((await s.backend.observe(s.project)).vms.web.power, 'running');
  await until(async () => closedAt > 0);
  watch.close();
  await until(async () => !pidAlive(pid) || (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) === '');
  const obs = (await s.backend.observe(s.project)).vms.web;
  assert.equal(obs.power, 'stopped');
  assert.equal(obs.pid, null);
  assert.equal(obs.exists, true);
});

test("fail-start: BackendError carrying QEMU's own stderr, and no process left behind", async () => {
  const s = setup('fail-start');
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  await assert.rejects(s.backend.start(s.project, s.vm), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.equal(e.reason, 'QemuStartFailed');
    assert.match(e.message, /fake failure requested by FAKE_QEMU_MODE/);
    return true;
  });
  const runs = await fakeRuns(s.log);
  assert.equal(runs.length, 1);
  await gone(runs[0].pid);
  assert.equal((await s.backend.observe(s.project)).vms.web.power, 'stopped');
});

test('a QEMU that never answers QMP: start times out and kills it', async () => {
  const s = setup('hang', {}, { timeouts: { start: 1200 } });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  await assert.rejects(s.backend.start(s.project, s.vm), (e: unknown) => e instanceof BackendError && e.reason === 'QemuStartTimeout');
  const runs = await fakeRuns(s.log);
  await until(async () => !pidAlive(runs[0].pid));
});

test("the VM's own start timeout from the file bounds QEMU's start; a flag value overrides it", async () => {
  const s = setup('hang', { timeouts: { start: 1.5 } });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  await assert.rejects(
    s.backend.start(s.project, s.vm),
    (e: unknown) => e instanceof BackendError && e.reason === 'QemuStartTimeout' && /within 1\.5 s/.test(e.message),
  );
  const f = setup('hang', { timeouts: { start: 60 } }, { timeouts: { start: 1000 } });
  await f.backend.prepare(f.project, f.vm, { recreateDisk: false });
  await assert.rejects(f.backend.start(f.project, f.vm), (e: unknown) => e instanceof BackendError && /within 1 s/.test(e.message));
});

test('aborting start kills the QEMU it started', async () => {
  const s = setup('hang', {}, { timeouts: { start: 20000 } });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const ac = new AbortController();
  const p = s.backend.start(s.project, s.vm, ac.signal);
  await until(async () => (await fakeRuns(s.log)).length === 1);
  ac.abort();
  await assert.rejects(p);
  const runs = await fakeRuns(s.log);
  await until(async () => !pidAlive(runs[0].pid));
});

test('a hung QEMU (alive, QMP silent) is observed as unknown', async () => {
  const s = setup('', {});
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const r = await s.backend.start(s.project, s.vm);
  started.push(r.pid);
  process.kill(r.pid, 'SIGSTOP');
  try {
    const t0 = Date.now();
    const obs = (await s.backend.observe(s.project)).vms.web;
    assert.equal(obs.power, 'unknown');
    assert.equal(obs.pid, r.pid);
    assert.ok(Date.now() - t0 < 2500);
  } finally {
    process.kill(r.pid, 'SIGCONT');
  }
  await s.backend.stop(s.project, 'web', { timeout: 5 });
});

test('suspend and resume go through QMP stop/cont', async () => {
  const s = setup();
  await up(s);
  await s.backend.suspend(s.project, 'web');
  assert.equal((await s.backend.observe(s.project)).vms.web.power, 'paused');
  await s.backend.resume(s.project, 'web');
  assert.equal((await s.backend.observe(s.project)).vms.web.power, 'running');
  await s.backend.stop(s.project, 'web', { timeout: 5 });
  await assert.rejects(s.backend.suspend(s.project, 'web'), (e: unknown) => e instanceof BackendError && e.reason === 'VmNotRunning');
});

test('destroy stops the VM and deletes its folder but keeps named volumes', async () => {
  const s = setup('', { volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }] });
  const pid = await up(s);
  const runs = await fakeRuns(s.log);
  assert.ok(runs[0].argv.includes(`virtio-blk-pci,drive=vol-data,serial=data,addr=0x1e`));
  await s.backend.destroy(s.project, 'web');
  await gone(pid);
  await assert.rejects(stat(join(s.projDir, 'vms', 'web')));
  assert.ok((await stat(volumePath(s.projDir, 'data'))).isFile());
  assert.equal((await s.backend.observe(s.project)).vms.web, undefined);
  await s.backend.destroy(s.project, 'web'); // idempotent
});

test('intent is recorded and cleared; corrupt state files are reported, never thrown', async () => {
  const s = setup();
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  await s.backend.setIntent(s.project, 'web', 'stopped');
  assert.equal((await s.backend.observe(s.project)).vms.web.intent, 'stopped');
  await s.backend.setIntent(s.project, 'web', null);
  assert.equal((await s.backend.observe(s.project)).vms.web.intent, null);

  await writeFile(vmFile(s.projDir, 'web', 'applied'), '{ not json');
  await writeFile(vmFile(s.projDir, 'web', 'ports'), '[1,2');
  const obs = (await s.backend.observe(s.project)).vms.web;
  assert.equal(obs.applied, null);
  assert.deepEqual(obs.corrupt.sort(), [vmFile(s.projDir, 'web', 'applied'), vmFile(s.projDir, 'web', 'ports')].sort());
  // prepare rewrites the record
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  assert.deepEqual((await s.backend.observe(s.project)).vms.web.applied, s.vm);

  // the provision record (written by the SSH guest) counts only for this disk's instance-id
  const instanceId = (await readFile(vmFile(s.projDir, 'web', 'instanceId'), 'utf8')).trim();
  await writeFile(vmFile(s.projDir, 'web', 'provision'), JSON.stringify({ instanceId, steps: ['h1', 'h2'] }));
  assert.deepEqual((await s.backend.observe(s.project)).vms.web.provisioned, ['h1', 'h2']);
  await writeFile(vmFile(s.projDir, 'web', 'provision'), JSON.stringify({ instanceId: 'i-old', steps: ['h1'] }));
  assert.deepEqual((await s.backend.observe(s.project)).vms.web.provisioned, []);
  // a recreated disk drops the record
  await s.backend.prepare(s.project, s.vm, { recreateDisk: true });
  await assert.rejects(stat(vmFile(s.projDir, 'web', 'provision')));
});

test('observing a converged project of three running VMs takes well under 100 ms', async () => {
  const s = setup();
  const names = ['a', 'b', 'c'];
  const vms = names.map((name) => ({ ...s.vm, name }));
  const project = { ...s.project, vms };
  for (const vm of vms) {
    await s.backend.prepare(project, vm, { recreateDisk: false });
    started.push((await s.backend.start(project, vm)).pid);
  }
  await s.backend.observe(project); // warm up (module loading, first connections)
  const t0 = performance.now();
  const obs = await s.backend.observe(project);
  const took = performance.now() - t0;
  assert.deepEqual(
    Object.values(obs.vms).map((v) => v.power),
    ['running', 'running', 'running'],
  );
  assert.ok(took < 100, `observe took ${took.toFixed(1)} ms`);
  for (const n of names) await s.backend.stop(project, n, { timeout: 5 });
});
