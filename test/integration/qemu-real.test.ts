/**
 * The backend with the real qemu-system-x86_64 (TCG, no guest OS: a blank disk): proves the
 * command line tend builds is one QEMU accepts, for BIOS and UEFI, and that start, observe,
 * suspend/resume and stop work against real QMP.
 */
import { connect } from 'node:net';
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

/** The first bytes a TCP server sends (a VNC server greets with "RFB 003.008\n"). */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf);
    };
    const timer = setTimeout(() => done(new Error(`no greeting on ${port}`)), 5000);
    sock.on('data', (b) => {
      buf += b.toString('latin1');
      if (buf.includes('\n')) done(null);
    });
    sock.on('error', (e) => done(e));
  });
}

// Every device model and protocol that `video`/`graphics` name exists in this QEMU and takes tend's argv.
for (const [video, graphics] of [
  ['virtio', 'vnc'],
  ['qxl', 'spice'],
  ['cirrus', 'none'],
] as const) {
  test(`real QEMU takes video ${video} with graphics ${graphics}; VNC/SPICE listen on 127.0.0.1 only, at the recorded port`, async () => {
    const stateRoot = join(root, `state-${video}`);
    const vm = applyDefaults({
      name: `real-${video}`,
      image: { kind: 'path', ref: base },
      accel: 'tcg',
      memory: 256,
      video,
      graphics,
    } as VmDraft);
    const project: Project = { name: 'real', dir: join(root, video), files: [], vms: [vm], volumes: {} };
    const backend = createQemuBackend({ stateRoot, termGraceMs: 5000 });
    await backend.prepare(project, vm, { recreateDisk: false });
    const r = await backend.start(project, vm);
    pids.push(r.pid);
    assert.equal((await backend.observe(project)).vms[vm.name].power, 'running');
    if (graphics !== 'none') {
      const where = r.ports[graphics];
      assert.match(where, /^127\.0\.0\.1:59\d\d$/);
      const port = Number(where.split(':')[1]);
      const listening = readFileSync('/proc/net/tcp', 'utf8')
        .split('\n')
        .filter((l) => / 0A /.test(l) && l.split(/\s+/)[2]?.endsWith(`:${port.toString(16).toUpperCase().padStart(4, '0')}`))
        .map((l) => l.split(/\s+/)[2]);
      assert.deepEqual(listening, ['0100007F:' + port.toString(16).toUpperCase().padStart(4, '0')], 'on 127.0.0.1 only');
      if (graphics === 'vnc') assert.match(await greeting(port), /^RFB 003\.00\d/);
    }
    await backend.stop(project, vm.name, { timeout: 0.5 });
    await gone(r.pid);
    const stderr = readFileSync(vmFile(projectDir(stateRoot, project.name, project.dir), vm.name, 'qemuStderr'), 'utf8');
    assert.doesNotMatch(stderr, /error|invalid/i);
  });
}
