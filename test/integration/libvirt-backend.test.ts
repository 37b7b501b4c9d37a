/**
 * The real libvirt backend against the real libvirtd (qemu:///system; .ci/run starts it), with
 * real QEMU under TCG booting only its firmware (a blank disk: no guest OS, so this is cheap and
 * needs no image). Proves: the domain is defined with tend's metadata (observation reads the spec
 * back from libvirt), UEFI gets a per-VM NVRAM file, the SSH forward is bound on 127.0.0.1,
 * suspend/resume, libvirt's lifecycle event reports a `virsh destroy` behind tend's back within a
 * second (and a watch by name, made after the end, reports it from the domain's state), stop falls back to destroy when the guest ignores ACPI, and destroy leaves no domain,
 * no folder and no NVRAM file. An unreachable daemon is a LibvirtUnavailable error with the fix.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, utimesSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { pino } from 'pino';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import type { VmExit } from '../../schemas/ports.js';
import { createLibvirtBackend } from '../../src/libvirt/backend.js';
import { domainName } from '../../src/libvirt/names.js';
import { readMetadata } from '../../src/libvirt/metadata.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmDir, vmFile } from '../../src/state/paths.js';
import { rejectsWith } from '../helpers/rejects.js';

const URI = 'qemu:///system';
let root: string;
let base: string;
const domains: string[] = [];

const virsh = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
  const r = await execa('virsh', ['-q', '-c', URI, ...args], { reject: false });
  return { code: r.exitCode ?? -1, out: String(r.stdout).trim(), err: String(r.stderr).trim() };
};

before(async () => {
  const v = await virsh('version');
  assert.equal(v.code, 0, `libvirtd must answer on ${URI} (.ci/run starts it: scripts/libvirt-daemons.sh): ${v.err}`);
  root = await mkdtemp(join(tmpdir(), 'tend-lv-'));
  base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
});

after(async () => {
  for (const d of domains) {
    await virsh('destroy', d);
    await virsh('undefine', d, '--nvram');
  }
  await rm(root, { recursive: true, force: true });
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('a UEFI VM on real libvirt: define, observe, run, suspend, crash event, stop, destroy', { timeout: 300_000 }, async () => {
  const stateRoot = join(root, 'state');
  const vm = applyDefaults({
    name: 'fw',
    image: { kind: 'path', ref: base },
    accel: 'tcg',
    memory: 128,
    firmware: 'uefi',
    stopGracePeriod: 1,
    cloudInit: null,
    graphics: 'vnc',
    libvirt: { snippets: ["<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"] },
  } as VmDraft);
  const project: Project = { name: 'lvtest', dir: join(root, 'project'), files: [], vms: [vm], volumes: {} };
  const dom = domainName(project, 'fw');
  domains.push(dom);
  const pd = projectDir(stateRoot, project.name, project.dir);
  const backend = createLibvirtBackend({ stateRoot, uri: URI, termGraceMs: 3000 });
  try {
    await backend.prepare(project, vm, { recreateDisk: false });
    const nvram = vmFile(pd, 'fw', 'efiVars');
    assert.ok(existsSync(nvram), 'per-VM NVRAM file');
    const xml = (await virsh('dumpxml', '--inactive', dom)).out;
    const md = readMetadata(xml);
    assert.ok(md.ok, md.ok ? '' : md.why);
    assert.deepEqual(md.value.spec, vm);
    assert.match(xml, new RegExp(`<nvram[^>]*>${nvram.replaceAll('/', '\\/')}</nvram>`));
    assert.match(xml, /org\.qemu\.guest_agent\.0/, 'snippet merged');

    let o = (await backend.observe(project)).vms.fw;
    assert.equal(o.power, 'stopped');
    assert.equal(o.exists, true);
    assert.deepEqual(o.applied, vm, 'the spec is read back from the domain');

    const r = { ...(await backend.start(project, vm)) };
    assert.ok(r.pid > 0 && pidAlive(r.pid), 'QEMU pid from libvirt');
    assert.equal(r.accel, 'tcg');
    assert.ok(await portOpen(r.sshPort), `SSH forward listening on 127.0.0.1:${r.sshPort}`);
    const vnc = /^127\.0\.0\.1:(\d+)$/.exec(r.ports.vnc ?? '');
    assert.ok(vnc, `VNC port recorded: ${JSON.stringify(r.ports)}`);
    assert.ok(await portOpen(Number(vnc[1])), 'VNC listening on 127.0.0.1');
    o = (await backend.observe(project)).vms.fw;
    assert.equal(o.power, 'running');
    assert.equal(o.pid, r.pid);
    assert.equal(o.sshPort, r.sshPort);
    assert.equal(o.ports.ssh, `127.0.0.1:${r.sshPort}`);
    assert.equal(o.ports.vnc, r.ports.vnc, 'observation reads the display port from the domain');
    assert.equal(o.ready, false, 'not known ready before markReady');
    await backend.markReady?.(project, 'fw', true);
    assert.equal((await backend.observe(project)).vms.fw.ready, true, 'ready recorded for this very process');
    assert.deepEqual(await backend.start(project, vm), r, 'start of a running VM returns what runs');

    // prepare of a running VM (a reseed): the domain keeps running, its record takes the new spec
    const vm2 = { ...vm, restart: 'on-failure' as const };
    await backend.prepare(project, vm2, { recreateDisk: false });
    o = (await backend.observe(project)).vms.fw;
    assert.equal(o.power, 'running');
    assert.equal(o.pid, r.pid);
    assert.deepEqual(o.applied, vm2, 'live metadata updated');
    assert.equal(o.ports.vnc, r.ports.vnc);
    await backend.stop(project, 'fw', { timeout: 0 });
    assert.deepEqual((await backend.observe(project)).vms.fw.applied, vm2, 'persistent metadata updated too');
    const rr = await backend.start(project, vm);
    r.pid = rr.pid;
    assert.equal((await backend.observe(project)).vms.fw.ready, false, 'a new process is not known ready');

    await backend.suspend(project, 'fw');
    assert.equal((await backend.observe(project)).vms.fw.power, 'paused');
    await backend.resume(project, 'fw');
    assert.equal((await backend.observe(project)).vms.fw.power, 'running');

    // a destroy behind tend's back arrives as libvirt's own event, well within a second
    const exit = new Promise<{ e: VmExit; at: number }>((resolve) => {
      backend.watchExit(project, 'fw', r.pid, (e) => resolve({ e, at: Date.now() }));
    });
    await new Promise((res) => setTimeout(res, 500)); // the event stream connects
    const t0 = Date.now();
    const d = await virsh('destroy', dom);
    const t1 = Date.now();
    assert.equal(d.code, 0, d.err);
    const { e, at } = await exit;
    assert.deepEqual(e, { vm: 'fw', pid: r.pid, kind: 'failure' });
    assert.ok(at - t1 < 1000, `exit reported ${at - t1} ms after virsh destroy returned (${t1 - t0} ms to destroy)`);
    assert.equal((await backend.observe(project)).vms.fw.power, 'stopped');
    // watched by name (pid 0: libvirt listed the domain running while its QEMU was already gone),
    // with the watch made after the end: no event comes any more, the domain's state tells
    const t2 = Date.now();
    const byName = await Promise.race([
      new Promise<VmExit>((resolve) => backend.watchExit(project, 'fw', 0, resolve)),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000)),
    ]);
    assert.deepEqual(byName, { vm: 'fw', pid: 0, kind: 'failure' }, 'a watch by name of a domain already ended reports its end');
    assert.ok(Date.now() - t2 < 2000, `reported after ${Date.now() - t2} ms`);

    // the firmware ignores ACPI: stop ends it anyway (graceful destroy after the grace period)
    const r2 = await backend.start(project, vm);
    assert.ok(pidAlive(r2.pid));
    await backend.stop(project, 'fw', { timeout: 1 });
    assert.equal((await backend.observe(project)).vms.fw.power, 'stopped');
    assert.equal(pidAlive(r2.pid), false);

    await backend.destroy(project, 'fw');
    assert.notEqual((await virsh('dominfo', dom)).code, 0, 'no domain left');
    assert.equal(existsSync(vmDir(pd, 'fw')), false, 'no VM folder (disk, seed, keys)');
    assert.equal(existsSync(nvram), false, 'no NVRAM file');
    assert.deepEqual((await backend.observe(project)).vms, {});
  } finally {
    backend.close();
  }
});

test('a URI whose daemon does not answer fails at once with LibvirtUnavailable and the fix', async () => {
  const backend = createLibvirtBackend({ stateRoot: join(root, 'state2'), uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' });
  const project: Project = { name: 'lvtest', dir: join(root, 'project2'), files: [], vms: [], volumes: {} };
  const t0 = Date.now();
  await assert.rejects(backend.observe(project), rejectsWith('LibvirtUnavailable', /does not answer on qemu\+unix.*backend: qemu/));
  assert.ok(Date.now() - t0 < 10_000);
});

test('doctor: the daemon, its version and socket; a VM pinned to a URI without a daemon is a problem with the fix', async () => {
  const { doctorCommand, renderDoctor } = await import('../../src/cli/commands/doctor.js');
  const dir = await mkdtemp(join(root, 'doctor-'));
  const good = await doctorCommand({ cwd: dir, stateDir: join(root, 'state3'), backendFlags: { backend: 'libvirt', connect: URI } });
  const l = good.libvirt?.find((x) => x.uri === URI);
  assert.ok(l?.answers, JSON.stringify(good.libvirt));
  assert.match(l.daemonVersion ?? '', /^\d+\.\d+\.\d+$/);
  assert.ok(l.socket === '/run/libvirt/virtqemud-sock' || l.socket === '/run/libvirt/libvirt-sock', String(l.socket));
  assert.match(renderDoctor(good), /libvirt: {5}qemu:\/\/\/system: libvirt \d+\.\d+\.\d+ .*socket \/run\/libvirt\//);
  assert.match(renderDoctor(good), /passt: /);

  const bad = 'qemu+unix:///system?socket=/nonexistent/libvirt-sock';
  await (
    await import('node:fs/promises')
  ).writeFile(join(dir, 'tend.yaml'), `services:\n  web:\n    image: debian:12\n    connect: "${bad}"\n`);
  const r = await doctorCommand({ cwd: dir, stateDir: join(root, 'state3') });
  assert.equal(r.ok, false);
  assert.ok(
    r.report.problems.some((p) => p.includes(`libvirt on ${bad} does not answer, but a VM selects it`)),
    r.report.problems.join('\n'),
  );
});

test('passt: the test define asks the real libvirt; 9.0 (Debian 12) rejects it, so forwards go through slirp; no probe domain is left', async () => {
  const { createVirsh } = await import('../../src/libvirt/virsh.js');
  const { passtByTestDefine, probeCapabilities, versionAtLeast } = await import('../../src/libvirt/capabilities.js');
  const v = createVirsh({ uri: URI });
  const test = await passtByTestDefine(v);
  const caps = await probeCapabilities(v);
  assert.ok(test, 'the test define is conclusive');
  // libvirt took passt from 9.2 on: the probe must agree with the daemon it talks to
  assert.equal(test.accepted, versionAtLeast(caps.daemonVersion, [9, 2, 0]), `${caps.daemonVersion}: ${test.why}`);
  if (!test.accepted) {
    assert.match(test.why, /Invalid value for attribute 'type' in element 'backend': 'passt'/);
    assert.equal(caps.passt, false);
    assert.match(caps.passtWhy, /rejects the passt backend.*slirp/);
  }
  assert.doesNotMatch((await virsh('list', '--all', '--name')).out, /tend-passt-probe/);
});

test(
  'stop --save on real libvirt: virsh managedsave, the next start restores it; a memory edit, a written disk or a save tend did not make is discarded with why',
  { timeout: 300_000 },
  async () => {
    const stateRoot = join(root, 'state-save');
    const vm = applyDefaults({
      name: 'sv',
      image: { kind: 'path', ref: base },
      accel: 'tcg',
      memory: 128,
      stopGracePeriod: 1,
      cloudInit: null,
    } as VmDraft);
    const project: Project = { name: 'lvsave', dir: join(root, 'project-save'), files: [], vms: [vm], volumes: {} };
    const dom = domainName(project, 'sv');
    domains.push(dom);
    const pd = projectDir(stateRoot, project.name, project.dir);
    const stateFile = `/var/lib/libvirt/qemu/save/${dom}.save`;
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push((JSON.parse(s) as { msg: string }).msg) });
    const backend = createLibvirtBackend({ stateRoot, uri: URI, termGraceMs: 3000, log });
    const reason = async (): Promise<string> => (await virsh('domstate', '--reason', dom)).out;
    const discarded = (): string[] => lines.filter((l) => l.startsWith('saved state discarded'));
    try {
      await backend.prepare(project, vm, { recreateDisk: false });
      const first = await backend.start(project, vm);
      assert.equal(first.restored, undefined, 'a first start boots');

      // not observed Ready in this boot: powered off, not saved
      assert.deepEqual(await backend.stop(project, 'sv', { timeout: 1, save: true }), { saved: false });
      assert.match(await reason(), /^shut off/);
      assert.doesNotMatch(await reason(), /saved/);
      assert.ok(
        lines.some((l) => /^not saved: it was not observed Ready/.test(l)),
        lines.join('\n'),
      );

      // Ready: saved by libvirt, QEMU gone, observed as saved with libvirt's file's size
      const booted = await backend.start(project, vm);
      await backend.markReady?.(project, 'sv', true);
      const t0 = Date.now();
      assert.deepEqual(await backend.stop(project, 'sv', { timeout: 1, save: true }), { saved: true });
      assert.equal(await reason(), 'shut off (saved)');
      assert.equal(pidAlive(booted.pid), false, 'QEMU exited');
      const o = (await backend.observe(project)).vms.sv;
      assert.equal(o.power, 'stopped');
      assert.ok(o.saved, 'observed as saved');
      assert.equal(o.saved.bytes, statSync(stateFile).size, "the size of libvirt's state file");
      assert.ok((o.saved.bytes ?? 0) > 100_000, `a real migration stream (${o.saved.bytes} bytes)`);
      assert.ok(o.saved.savedAt !== null && o.saved.savedAt >= t0 && o.saved.savedAt <= Date.now());

      // start (the domain is defined again first): restored, used once
      const restored = await backend.start(project, vm);
      assert.equal(restored.restored, true);
      assert.equal(await reason(), 'running (restored)');
      assert.equal((await backend.observe(project)).vms.sv.saved, null);
      assert.equal(existsSync(stateFile), false, 'libvirt deleted its file after the restore');
      assert.deepEqual(discarded(), []);

      // saved, then the memory edited: discarded with the difference, booted with the new memory
      await backend.markReady?.(project, 'sv', true);
      assert.deepEqual(await backend.stop(project, 'sv', { timeout: 1, save: true }), { saved: true });
      const bigger = { ...vm, memory: 160 };
      await backend.prepare(project, bigger, { recreateDisk: false });
      assert.equal(await reason(), 'shut off (saved)', 'a define keeps the managed save');
      const edited = await backend.start(project, bigger);
      assert.equal(edited.restored, undefined);
      assert.equal(await reason(), 'running (booted)');
      assert.match((await virsh('dumpxml', dom)).out, /<memory unit='KiB'>163840<\/memory>/, 'runs with the new memory');
      assert.deepEqual(discarded(), [
        'saved state discarded: the VM\'s settings changed (<memory unit="MiB">128</memory> → <memory unit="MiB">160</memory>); booting with its disk kept',
      ]);
      assert.equal(existsSync(stateFile), false);

      // saved, then its disk written: discarded
      await backend.markReady?.(project, 'sv', true);
      assert.deepEqual(await backend.stop(project, 'sv', { timeout: 1, save: true }), { saved: true });
      const disk = vmFile(pd, 'sv', 'disk');
      const later = new Date(Date.now() + 5000);
      utimesSync(disk, later, later);
      assert.equal((await backend.start(project, bigger)).restored, undefined);
      assert.equal(await reason(), 'running (booted)');
      assert.match(
        discarded()[1] ?? '',
        /^saved state discarded: its disk .*disk\.qcow2 was written since the save; booting with its disk kept$/,
      );

      // a managed save tend did not make (no record of its disks): never restored
      assert.equal((await virsh('managedsave', dom)).code, 0);
      assert.equal((await backend.observe(project)).vms.sv.saved?.bytes, statSync(stateFile).size, 'observed all the same');
      assert.equal((await backend.start(project, bigger)).restored, undefined);
      assert.equal(await reason(), 'running (booted)');
      assert.match(discarded()[2] ?? '', /^saved state discarded: tend has no record of the disks it belongs to/);

      // down --destroy of a saved VM leaves no state file
      await backend.markReady?.(project, 'sv', true);
      assert.deepEqual(await backend.stop(project, 'sv', { timeout: 1, save: true }), { saved: true });
      assert.ok(existsSync(stateFile));
      await backend.destroy(project, 'sv');
      assert.notEqual((await virsh('dominfo', dom)).code, 0, 'no domain left');
      assert.equal(existsSync(stateFile), false, 'no managed save left');
      assert.equal(existsSync(vmDir(pd, 'sv')), false);
    } finally {
      backend.close();
    }
  },
);

test(
  "snapshots on real libvirt: qcow2 internal snapshots with memory through libvirt's monitor while running, qemu-img while stopped; they survive a restart (redefine)",
  { timeout: 300_000 },
  async () => {
    const stateRoot = join(root, 'state-snap');
    const vm = applyDefaults({
      name: 'sn',
      image: { kind: 'path', ref: base },
      accel: 'tcg',
      memory: 128,
      stopGracePeriod: 1,
      cloudInit: null,
    } as VmDraft);
    const project: Project = { name: 'lvsnap', dir: join(root, 'project-snap'), files: [], vms: [vm], volumes: {} };
    const dom = domainName(project, 'sn');
    domains.push(dom);
    const pd = projectDir(stateRoot, project.name, project.dir);
    const disk = vmFile(pd, 'sn', 'disk');
    const inDisk = (): string[] =>
      (
        (
          JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' })) as {
            snapshots?: { name: string }[];
          }
        ).snapshots ?? []
      ).map((s) => s.name);
    const backend = createLibvirtBackend({ stateRoot, uri: URI, termGraceMs: 3000 });
    try {
      await backend.prepare(project, vm, { recreateDisk: false });
      const r = await backend.start(project, vm);
      // running: disks and memory, through QEMU's jobs over libvirt's monitor; the domain runs on
      const s1 = await backend.saveSnapshot!(project, 'sn', 'one');
      assert.equal(s1.name, 'one');
      assert.equal(s1.vmState, true, 'with its memory');
      assert.ok(s1.vmStateBytes > 100_000, `memory state ${s1.vmStateBytes} bytes`);
      assert.deepEqual(inDisk(), ['one'], 'an internal snapshot in the overlay');
      assert.equal((await virsh('domstate', dom)).out, 'running');
      assert.deepEqual((await backend.observe(project)).vms.sn.snapshots, ['one']);
      await assert.rejects(backend.saveSnapshot!(project, 'sn', 'one'), /already has a snapshot "one"/);
      assert.deepEqual(await backend.restoreSnapshot!(project, 'sn', 'one'), { running: true, memory: true });
      assert.equal((await virsh('domstate', dom)).out, 'running', 'running after the load');
      assert.equal((await backend.observe(project)).vms.sn.pid, r.pid, 'the same QEMU');

      // a restart defines the domain again: the snapshot is in the disk, not in libvirt's metadata
      await backend.stop(project, 'sn', { timeout: 1 });
      assert.equal((await virsh('snapshot-list', dom, '--name')).out, '', 'libvirt knows of no snapshot');
      // stopped: disks only, through qemu-img
      const s2 = await backend.saveSnapshot!(project, 'sn', 'cold');
      assert.equal(s2.vmState, false);
      assert.deepEqual(
        (await backend.listSnapshots!(project, 'sn')).map((s) => [s.name, s.vmState]),
        [
          ['one', true],
          ['cold', false],
        ],
      );
      assert.deepEqual(await backend.restoreSnapshot!(project, 'sn', 'cold'), { running: false, memory: false });
      await backend.start(project, vm);
      await assert.rejects(backend.restoreSnapshot!(project, 'sn', 'cold'), /has no memory state/);
      assert.deepEqual(await backend.restoreSnapshot!(project, 'sn', 'one'), { running: true, memory: true });
      await backend.removeSnapshot!(project, 'sn', 'one');
      await backend.removeSnapshot!(project, 'sn', 'cold');
      assert.deepEqual(inDisk(), []);
      await assert.rejects(backend.removeSnapshot!(project, 'sn', 'one'), /has no snapshot "one"/);
      await backend.destroy(project, 'sn');
      assert.notEqual((await virsh('dominfo', dom)).code, 0, 'no domain left');
    } finally {
      backend.close();
    }
  },
);
