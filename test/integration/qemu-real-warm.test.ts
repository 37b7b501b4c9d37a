/**
 * Saved state and snapshots with the real qemu-system-x86_64 (TCG, no guest OS: a blank disk,
 * the BIOS idles): proves QEMU accepts what tend asks of it — `migrate` to `exec:cat > file` from
 * a detached QEMU and `-incoming exec:cat file`, the `snapshot-save` / `snapshot-load` /
 * `snapshot-delete` jobs over the overlay and a named volume, `qemu-img snapshot` while stopped.
 * What the guest sees after a restore is proven on a real guest (test/e2e/warm.test.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile, volumePath } from '../../src/state/paths.js';

const root = mkdtempSync(join(tmpdir(), 'tend-real-warm-'));
const base = join(root, 'base.qcow2');
execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
const pids: number[] = [];
after(() => {
  for (const p of pids) if (pidAlive(p)) process.kill(p, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const snapshotsIn = (disk: string): string[] =>
  (
    (
      JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' })) as {
        snapshots?: { name: string }[];
      }
    ).snapshots ?? []
  ).map((s) => s.name);

test('real QEMU: stop --save and restore; snapshots while running and while stopped', { timeout: 180_000 }, async () => {
  const stateRoot = join(root, 'state');
  const vm = applyDefaults({
    name: 'warm',
    image: { kind: 'path', ref: base },
    accel: 'tcg',
    memory: 128,
    volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }],
  } as VmDraft);
  const project: Project = { name: 'real', dir: join(root, 'p'), files: [], vms: [vm], volumes: { data: { size: 1 } } };
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (x: string) => void lines.push((JSON.parse(x) as { msg: string }).msg) });
  const backend = createQemuBackend({ stateRoot, termGraceMs: 5000, log });
  const pd = projectDir(stateRoot, project.name, project.dir);
  const disk = vmFile(pd, 'warm', 'disk');

  await backend.prepare(project, vm, { recreateDisk: false });
  const first = await backend.start(project, vm);
  pids.push(first.pid);
  await backend.markReady!(project, 'warm', true);
  assert.deepEqual(await backend.stop(project, 'warm', { timeout: 5, save: true }), { saved: true });
  for (let i = 0; i < 200 && pidAlive(first.pid); i++) await new Promise((r) => setTimeout(r, 10)); // a zombie child until reaped
  assert.equal(pidAlive(first.pid), false);
  const saved = (await backend.observe(project)).vms.warm!.saved;
  assert.ok(saved && (saved.bytes ?? 0) > 1_000_000, `a real migration stream (${saved?.bytes} bytes)`);

  await backend.prepare(project, vm, { recreateDisk: false });
  const second = await backend.start(project, vm);
  pids.push(second.pid);
  assert.equal(second.restored, true, lines.join('\n'));
  const obs = (await backend.observe(project)).vms.warm!;
  assert.equal(obs.power, 'running');
  assert.equal(obs.saved, null);

  // running: disks and memory, through QEMU's jobs, on the overlay and the named volume
  const s1 = await backend.saveSnapshot(project, 'warm', 'one');
  assert.equal(s1.name, 'one');
  assert.equal(s1.vmState, true);
  assert.deepEqual(snapshotsIn(disk), ['one']);
  assert.deepEqual(snapshotsIn(volumePath(pd, 'data')), ['one']);
  assert.deepEqual((await backend.observe(project)).vms.warm!.snapshots, ['one']);
  await assert.rejects(backend.saveSnapshot(project, 'warm', 'one'), /already has a snapshot "one"/);
  assert.deepEqual(await backend.restoreSnapshot(project, 'warm', 'one'), { running: true, memory: true });
  assert.equal((await backend.observe(project)).vms.warm!.power, 'running');
  await assert.rejects(backend.restoreSnapshot(project, 'warm', 'nope'), /has no snapshot "nope" \(it has: one\)/);

  // stopped: disks only, through qemu-img
  await backend.stop(project, 'warm', { timeout: 0 });
  const s2 = await backend.saveSnapshot(project, 'warm', 'cold');
  assert.equal(s2.vmState, false);
  assert.deepEqual(
    (await backend.listSnapshots(project, 'warm')).map((s) => [s.name, s.vmState]),
    [
      ['one', true],
      ['cold', false],
    ],
  );
  assert.deepEqual(await backend.restoreSnapshot(project, 'warm', 'cold'), { running: false, memory: false });
  await backend.removeSnapshot(project, 'warm', 'cold');
  assert.deepEqual(snapshotsIn(disk), ['one']);

  // a disk-only snapshot cannot be loaded into a running VM: said, not attempted
  await backend.saveSnapshot(project, 'warm', 'cold2');
  const third = await backend.start(project, vm);
  pids.push(third.pid);
  await assert.rejects(backend.restoreSnapshot(project, 'warm', 'cold2'), /has no memory state/);
  await backend.removeSnapshot(project, 'warm', 'one');
  await backend.removeSnapshot(project, 'warm', 'cold2');
  assert.deepEqual(snapshotsIn(disk), []);
  assert.deepEqual(snapshotsIn(volumePath(pd, 'data')), []);
  await backend.stop(project, 'warm', { timeout: 0 });
  assert.ok((await stat(disk)).size > 0);
});
