/**
 * The backend with the real qemu-system-x86_64 (TCG, no guest OS: a blank disk): proves the
 * command line tend builds is one QEMU accepts, for BIOS and UEFI, and that start, observe,
 * suspend/resume and stop work against real QMP.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { watchVmEvents } from '../../src/qemu/events.js';
import { projectDir, vmFile } from '../../src/state/paths.js';

const root = mkdtempSync(join(tmpdir(), 'tend-real-'));
const base = join(root, 'base.qcow2');
execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
const pids: number[] = [];

/** The process is gone (a child of this test process may linger as a zombie until reaped). */
async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(pidAlive(pid), false, `pid ${pid} is gone`);
}
after(() => {
  for (const p of pids) if (pidAlive(p)) process.kill(p, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

for (const firmware of ['bios', 'uefi'] as const) {
  test(`real QEMU (${firmware}): start, observe running, suspend/resume, stop`, async () => {
    const stateRoot = join(root, `state-${firmware}`);
    const vm = applyDefaults({
      name: `real-${firmware}`,
      image: { kind: 'path', ref: base },
      accel: 'tcg',
      memory: 256,
      firmware,
      ports: [{ guestPort: 80 }],
      volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: true }],
    } as VmDraft);
    const project: Project = { name: 'real', dir: join(root, firmware), files: [], vms: [vm], volumes: { data: { size: 1 } } };
    const backend = createQemuBackend({ stateRoot, termGraceMs: 5000 });
    await backend.prepare(project, vm, { recreateDisk: false });
    const r = await backend.start(project, vm);
    pids.push(r.pid);
    // a long-lived event listener on the second monitor does not block observe's QMP queries
    const projDir = projectDir(stateRoot, project.name, project.dir);
    const events: string[] = [];
    let closed = false;
    const watch = await watchVmEvents(projDir, vm.name, { onEvent: (e) => events.push(e.event), onClose: () => (closed = true) });
    const obs = (await backend.observe(project)).vms[vm.name];
    assert.equal(obs.power, 'running');
    assert.equal(obs.accel, 'tcg');
    assert.equal(obs.pid, r.pid);
    await backend.suspend(project, vm.name);
    assert.equal((await backend.observe(project)).vms[vm.name].power, 'paused');
    await backend.resume(project, vm.name);
    assert.equal((await backend.observe(project)).vms[vm.name].power, 'running');
    assert.deepEqual(
      events.filter((e) => e === 'STOP' || e === 'RESUME'),
      ['STOP', 'RESUME'],
    );
    // no guest OS to honour ACPI: the grace period runs out and SIGTERM ends it
    await backend.stop(project, vm.name, { timeout: 0.5 });
    await gone(r.pid);
    assert.equal((await backend.observe(project)).vms[vm.name].power, 'stopped');
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(closed, true, 'the event connection reports the exit');
    assert.ok(events.includes('POWERDOWN') || events.includes('SHUTDOWN'), `events: ${events.join(',')}`);
    watch.close();
    const stderr = readFileSync(vmFile(projectDir(stateRoot, project.name, project.dir), vm.name, 'qemuStderr'), 'utf8');
    assert.doesNotMatch(stderr, /error|invalid/i);
  });
}
