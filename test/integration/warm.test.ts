/**
 * Saved state (issue 15 §1) through the real QEMU backend against the fake qemu-system-x86_64,
 * which saves a small state over `migrate exec:` and reads it back with `-incoming exec:`: a
 * state is restored only while it is valid (same QEMU, same argv, disks untouched, same seed);
 * anything else discards it with one line saying why and cold-boots with the disk kept.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { FullBackend } from '../../schemas/ports.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { argvDifference } from '../../src/qemu/saved-state.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
let root: string;
let base: string;
let counter = 0;
const started: number[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tend-warm-'));
  base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
});

after(async () => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await rm(root, { recursive: true, force: true });
});

interface Setup {
  backend: FullBackend;
  project: Project;
  vm: VmSpec;
  projDir: string;
  log: string;
  env: NodeJS.ProcessEnv;
  lines: string[];
  stateRoot: string;
}

function setup(mode = '', draft: Partial<VmDraft> = {}): Setup {
  const n = ++counter;
  const stateRoot = join(root, `s${n}`);
  const log = join(root, `fake${n}.log`);
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_LOG: log, FAKE_QEMU_MODE: mode };
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: base }, accel: 'tcg', ...draft } as VmDraft);
  const project: Project = { name: 'demo', dir: join(root, `p${n}`), files: [], vms: [vm], volumes: {} };
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push((JSON.parse(s) as { msg: string }).msg) });
  const backend = createQemuBackend({ stateRoot, env, log: logger });
  return { backend, project, vm, projDir: projectDir(stateRoot, project.name, project.dir), log, env, lines, stateRoot };
}

function withBackend(s: Setup, env: NodeJS.ProcessEnv): Setup {
  const logger = pino({ level: 'debug' }, { write: (x: string) => void s.lines.push((JSON.parse(x) as { msg: string }).msg) });
  return { ...s, env, backend: createQemuBackend({ stateRoot: s.stateRoot, env, log: logger }) };
}

async function runs(log: string): Promise<string[][]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
    .filter((a) => a.includes('-pidfile'));
}

async function start(s: Setup, vm: VmSpec = s.vm): Promise<{ pid: number; restored: boolean }> {
  await s.backend.prepare(s.project, vm, { recreateDisk: false });
  const r = await s.backend.start(s.project, vm);
  started.push(r.pid);
  return { pid: r.pid, restored: r.restored === true };
}

/** Start, mark Ready (as the controller does after readiness), save. */
async function saved(s: Setup): Promise<void> {
  await start(s);
  await s.backend.markReady!(s.project, 'web', true);
  const r = await s.backend.stop(s.project, 'web', { timeout: 5, save: true });
  assert.deepEqual(r, { saved: true });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

test('stop --save of a Ready VM saves its state; the next start restores it once, then boots normally', async () => {
  const s = setup();
  await saved(s);
  const obs = (await s.backend.observe(s.project)).vms.web!;
  assert.equal(obs.power, 'stopped');
  assert.ok(obs.saved && (obs.saved.bytes ?? 0) > 4096, 'observed as saved, with its size');
  assert.ok(await exists(vmFile(s.projDir, 'web', 'savedState')));
  const rec = JSON.parse(await readFile(vmFile(s.projDir, 'web', 'savedRecord'), 'utf8')) as { qemuVersion: string; argv: string[] };
  assert.match(rec.qemuVersion, /7\.2\.0 \(fake\)/);
  assert.equal(rec.argv[0], '-name');

  const disk = (await stat(vmFile(s.projDir, 'web', 'disk'))).ino;
  const r = await start(s);
  assert.equal(r.restored, true);
  const last = (await runs(s.log)).at(-1)!;
  assert.equal(last[last.indexOf('-incoming') + 1], `exec:cat '${vmFile(s.projDir, 'web', 'savedState')}'`);
  assert.equal((await stat(vmFile(s.projDir, 'web', 'disk'))).ino, disk, 'same disk');
  assert.equal(await exists(vmFile(s.projDir, 'web', 'savedState')), false, 'a state is used once');
  assert.equal((await s.backend.observe(s.project)).vms.web!.saved, null);

  // a plain stop after it saves nothing; the next start boots
  await s.backend.stop(s.project, 'web', { timeout: 5 });
  const again = await start(s);
  assert.equal(again.restored, false);
  assert.equal((await runs(s.log)).at(-1)!.includes('-incoming'), false);
  await s.backend.stop(s.project, 'web', { timeout: 0 });
});

test('a VM not observed Ready is powered off, not saved (a guest saved mid-boot may not come back)', async () => {
  const s = setup();
  await start(s);
  const r = await s.backend.stop(s.project, 'web', { timeout: 5, save: true });
  assert.deepEqual(r, { saved: false });
  assert.equal(await exists(vmFile(s.projDir, 'web', 'savedState')), false);
  assert.ok(
    s.lines.some((l) => /not saved: it was not observed Ready/.test(l)),
    s.lines.join('\n'),
  );
});

test("a warm clone's volumes plugged in after its restore: stop --save powers it off instead (a state could not hold them)", async () => {
  const s = setup();
  await start(s);
  await s.backend.markReady!(s.project, 'web', true);
  // what a clone with a volume runs as: its spec has the volume, its QEMU's argv does not
  const applied = JSON.parse(await readFile(vmFile(s.projDir, 'web', 'applied'), 'utf8')) as { spec: VmSpec };
  applied.spec.volumes = [{ kind: 'named', name: 'data', target: '/data', readOnly: false }];
  await writeFile(vmFile(s.projDir, 'web', 'applied'), JSON.stringify(applied));
  const r = await s.backend.stop(s.project, 'web', { timeout: 5, save: true });
  assert.deepEqual(r, { saved: false });
  assert.equal(await exists(vmFile(s.projDir, 'web', 'savedState')), false);
  assert.ok(
    s.lines.some((l) => /not saved: its volumes and host folders were plugged in after a warm-clone restore/.test(l)),
    s.lines.join('\n'),
  );
});

test('a memory change discards the state with the reason and cold-boots on the same disk', async () => {
  const s = setup();
  await saved(s);
  const disk = (await stat(vmFile(s.projDir, 'web', 'disk'))).ino;
  const bigger = { ...s.vm, memory: 1536 };
  const r = await start(s, bigger);
  assert.equal(r.restored, false);
  assert.equal((await runs(s.log)).at(-1)!.includes('-incoming'), false);
  assert.ok(
    s.lines.some((l) => l === "saved state discarded: the VM's settings changed (-m 1024 → -m 1536); booting with its disk kept"),
    s.lines.join('\n'),
  );
  assert.equal((await stat(vmFile(s.projDir, 'web', 'disk'))).ino, disk, 'disk kept');
  assert.equal(await exists(vmFile(s.projDir, 'web', 'savedState')), false);
  await s.backend.stop(s.project, 'web', { timeout: 0 });
});

test('other host ports (an edited `ports:`) keep the state: it is restored with the new forwards', async () => {
  const s = setup();
  await saved(s);
  const forwarded = { ...s.vm, ports: [{ hostAddress: '127.0.0.1', hostPort: 18080, guestPort: 80, protocol: 'tcp' as const }] };
  const r = await start(s, forwarded);
  assert.equal(r.restored, true, s.lines.join('\n'));
  const argv = (await runs(s.log)).at(-1)!;
  assert.ok(argv.includes('-incoming'));
  assert.match(argv[argv.indexOf('-netdev') + 1]!, /hostfwd=tcp:127\.0\.0\.1:18080-:80/);
  assert.ok(!s.lines.some((l) => /saved state discarded/.test(l)), s.lines.join('\n'));
  await s.backend.stop(s.project, 'web', { timeout: 0 });
});

test('a disk written since the save, a new QEMU, a lost state file or a recreate each discard it', async () => {
  // the overlay written (its mtime moves)
  const a = setup();
  await saved(a);
  const disk = vmFile(a.projDir, 'web', 'disk');
  await utimes(disk, new Date(), new Date(Date.now() + 5000));
  assert.equal((await start(a)).restored, false);
  assert.ok(
    a.lines.some((l) => l.includes(`its disk ${disk} was written since the save`)),
    a.lines.join('\n'),
  );
  await a.backend.stop(a.project, 'web', { timeout: 0 });

  // QEMU upgraded
  const b = setup();
  await saved(b);
  const upgraded = withBackend(b, { ...b.env, FAKE_QEMU_VERSION: '8.2.0' });
  assert.equal((await start(upgraded)).restored, false);
  assert.ok(
    b.lines.some((l) =>
      /QEMU changed \(saved with "QEMU emulator version 7\.2\.0 \(fake\)", now "QEMU emulator version 8\.2\.0 \(fake\)"\)/.test(l),
    ),
  );
  await upgraded.backend.stop(b.project, 'web', { timeout: 0 });

  // the state file is gone
  const c = setup();
  await saved(c);
  await rm(vmFile(c.projDir, 'web', 'savedState'));
  assert.equal((await start(c)).restored, false);
  assert.ok(c.lines.some((l) => l.includes('the state file is missing')));
  await c.backend.stop(c.project, 'web', { timeout: 0 });

  // recreate: the disk is replaced, the state goes with it
  const d = setup();
  await saved(d);
  const progress: string[] = [];
  await d.backend.prepare(d.project, d.vm, { recreateDisk: true, onProgress: (m) => progress.push(m) });
  assert.ok(progress.includes('web: its saved state is discarded with its disk'));
  assert.equal(await exists(vmFile(d.projDir, 'web', 'savedRecord')), false);
  assert.equal((await d.backend.observe(d.project)).vms.web!.saved, null);
});

test('a state QEMU cannot load is discarded and the VM boots', async () => {
  const s = setup();
  await saved(s);
  const p = vmFile(s.projDir, 'web', 'savedState');
  const size = (await stat(p)).size;
  await writeFile(p, Buffer.alloc(size, 0x41)); // same size, not a state
  const r = await start(s);
  assert.equal(r.restored, false);
  assert.ok(
    s.lines.some((l) => /saved state discarded: QEMU could not restore it/.test(l)),
    s.lines.join('\n'),
  );
  assert.equal(await exists(p), false);
  assert.ok(pidAlive(r.pid));
  await s.backend.stop(s.project, 'web', { timeout: 0 });
});

test('a save QEMU refuses leaves the VM running, with the reason', async () => {
  const s = setup('migrate-fail');
  const { pid } = await start(s);
  await s.backend.markReady!(s.project, 'web', true);
  await assert.rejects(
    s.backend.stop(s.project, 'web', { timeout: 5, save: true }),
    /could not save its state \(fake: a device cannot migrate\); the VM keeps running/,
  );
  assert.ok(pidAlive(pid));
  assert.equal((await s.backend.observe(s.project)).vms.web!.power, 'running');
  assert.equal(await exists(vmFile(s.projDir, 'web', 'savedState')), false);
  await s.backend.stop(s.project, 'web', { timeout: 0 });
});

test('argvDifference names the first changed option', () => {
  assert.equal(argvDifference(['-m', '1024'], ['-m', '2048']), '-m 1024 → -m 2048');
  assert.equal(argvDifference(['-a'], ['-a', '-b']), '(none) → -b');
  assert.equal(argvDifference(['-a'], ['-a']), null);
});
