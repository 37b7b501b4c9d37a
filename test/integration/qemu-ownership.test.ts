/**
 * What tend starts, it owns (issue 13 items 3, 4, 14), with the real QEMU backend, the fake
 * qemu-system and a fake virtiofsd (test/fake-qemu):
 *  - a virtiofsd left by a tend killed just after starting it is reaped by the next start and by
 *    destroy; the VM starts again;
 *  - a damaged qemu.pid does not hide the running QEMU: no second QEMU is started;
 *  - a guest that ignores ACPI is asked to power off over SSH before any SIGTERM, only when it
 *    shows the VM's pinned host key; destroying a VM
 *    with nothing that outlives it does not wait for a shutdown.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { Backend } from '../../schemas/ports.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { hostFolderShares } from '../../src/qemu/volumes.js';
import { projectDir, vmDir, vmFile } from '../../src/state/paths.js';
import { hostAlias, writePin } from '../../src/ssh/known-hosts.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const child = fileURLToPath(new URL('../helpers/backend-child.ts', import.meta.url));
let root: string;
let base: string;
let sshd: TestSshd;
let counter = 0;

/** Live (non-zombie) processes whose command line contains every needle. */
function procs(...needles: string[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (needles.every((n) => cmd.includes(n)) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${e}/stat`, 'utf8'))) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tend-own-'));
  base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
  // the guest's `poweroff`: marks that it ran, then the "guest" powers off (SIGUSR1 to the fake QEMU)
  await mkdir(join(root, 'bin'));
  await writeFile(
    join(root, 'bin', 'poweroff'),
    `#!/bin/sh\necho ran >> ${root}/poweroff-ran\nkill -USR1 "$(cat "$(cat ${root}/target-pidfile)")"\n`,
    { mode: 0o755 },
  );
  await writeFile(join(root, 'bin', 'sudo'), '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n', { mode: 0o755 });
  sshd = await startTestSshd({ pathDirs: [join(root, 'bin')] });
});

after(async () => {
  for (const pid of procs(root)) process.kill(pid, 'SIGKILL');
  await sshd?.dispose();
  await rm(root, { recursive: true, force: true });
});

interface Setup {
  backend: Backend;
  project: Project;
  vm: VmSpec;
  projDir: string;
  stateRoot: string;
  env: NodeJS.ProcessEnv;
}

function setup(draft: Partial<VmDraft> = {}, mode = '', extraEnv: NodeJS.ProcessEnv = {}): Setup {
  const n = ++counter;
  const stateRoot = join(root, `s${n}`);
  const env = {
    ...process.env,
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    TEND_VIRTIOFSD: join(fakeDir, 'virtiofsd'),
    FAKE_QEMU_MODE: mode,
    FAKE_QEMU_GUEST_SSH: String(sshd.port),
    ...extraEnv,
  };
  const vm = applyDefaults({
    name: 'web',
    image: { kind: 'path', ref: base },
    accel: 'tcg',
    disk: 2,
    cloudInit: null,
    ...draft,
  } as VmDraft);
  const project: Project = { name: 'own', dir: join(root, `p${n}`), files: [], vms: [vm], volumes: {} };
  return {
    backend: createQemuBackend({ stateRoot, env }),
    project,
    vm,
    projDir: projectDir(stateRoot, project.name, project.dir),
    stateRoot,
    env,
  };
}

/** prepare + start in a child process (a `tend`), returning how it ended. */
async function startInChild(
  s: Setup,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const file = join(root, `setup-${counter}.json`);
  await writeFile(file, JSON.stringify({ stateRoot: s.stateRoot, project: s.project }));
  return new Promise((resolve) => {
    const env = { ...s.env, ...extraEnv };
    delete env.NODE_OPTIONS;
    const p = spawn(process.execPath, ['--import', 'tsx', child, file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

async function hostFolderVm(): Promise<Setup> {
  const share = join(root, `share${counter + 1}`);
  await mkdir(share);
  return setup({ volumes: [{ kind: 'host', source: share, target: '/srv/share', readOnly: false }], stopGracePeriod: 1 });
}

test('a virtiofsd left by a tend killed just after starting it is reaped; the VM starts again; destroy leaves no helper', async () => {
  const s = await hostFolderVm();
  const dir = vmDir(s.projDir, 'web');
  const crashed = await startInChild(s, { FAKE_VIRTIOFSD_KILL_PARENT: '1' });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  const socket = hostFolderShares(s.vm, dir, s.env)[0]?.socket as string;
  const ours = procs('virtiofsd', `--socket-path=${socket}`);
  assert.equal(ours.length, 1, 'the crash left one virtiofsd behind');
  assert.equal(procs(vmFile(s.projDir, 'web', 'pid')).length, 0, 'and no QEMU');

  // the next start reaps it and starts (before: "Cannot lock pid file")
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  const r = await s.backend.start(s.project, s.vm);
  assert.ok(pidAlive(r.pid));
  assert.equal(pidAlive(ours[0] as number) && procs('virtiofsd').includes(ours[0] as number), false, 'the orphan is gone');
  const helpers = JSON.parse(await readFile(vmFile(s.projDir, 'web', 'helpers'), 'utf8')) as { helpers: { pid: number }[] };
  assert.equal(helpers.helpers.length, 1, 'the new virtiofsd is recorded');
  assert.ok(procs('virtiofsd').includes(helpers.helpers[0]?.pid as number));

  await s.backend.destroy(s.project, 'web');
  assert.deepEqual(
    procs('virtiofsd').filter((p) => p === helpers.helpers[0]?.pid || ours.includes(p)),
    [],
  );
  assert.equal(procs(vmFile(s.projDir, 'web', 'pid')).length, 0);
});

test('destroy right after such a crash (no start in between) removes the orphan virtiofsd', async () => {
  const s = await hostFolderVm();
  const crashed = await startInChild(s, { FAKE_VIRTIOFSD_KILL_PARENT: '1' });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  const dir = vmDir(s.projDir, 'web');
  const mine = (): number[] =>
    procs('virtiofsd').filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    });
  assert.equal(mine().length, 1);
  await s.backend.destroy(s.project, 'web');
  assert.deepEqual(mine(), []);
});

for (const [how, damage] of [
  ['deleted', async (f: string) => rm(f, { force: true })],
  ['truncated', async (f: string) => writeFile(f, '')],
  ['garbage', async (f: string) => writeFile(f, '\u0000\u00ffnot a pid')],
  ['another process (pid 1)', async (f: string) => writeFile(f, '1\n')],
] as const) {
  test(`a qemu.pid ${how} does not hide the running QEMU: observed running, no second QEMU started, stop stops it`, async () => {
    const s = setup({ stopGracePeriod: 1 });
    const pidfile = vmFile(s.projDir, 'web', 'pid');
    await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
    const first = await s.backend.start(s.project, s.vm);
    await damage(pidfile);

    const o = (await s.backend.observe(s.project)).vms.web;
    assert.equal(o?.pid, first.pid);
    assert.equal(o?.power, 'running');
    const again = await s.backend.start(s.project, s.vm);
    assert.equal(again.pid, first.pid);
    assert.deepEqual(procs(pidfile), [first.pid], 'exactly one QEMU for this VM');
    assert.equal(readFileSync(pidfile, 'utf8').trim(), String(first.pid), 'the pidfile is written again');

    await s.backend.stop(s.project, 'web', { timeout: 1 });
    assert.deepEqual(procs(pidfile), []);
  });
}

test('a guest that ignores ACPI is asked over SSH to power off before any SIGTERM', async () => {
  const s = setup({ ssh: { user: sshd.user, privateKey: sshd.key } }, 'ignore-powerdown');
  const backend = createQemuBackend({ stateRoot: s.stateRoot, env: s.env, acpiPatienceMs: 300 });
  await writeFile(join(root, 'target-pidfile'), vmFile(s.projDir, 'web', 'pid'));
  await rm(join(root, 'poweroff-ran'), { force: true });
  await backend.prepare(s.project, s.vm, { recreateDisk: false });
  const { pid } = await backend.start(s.project, s.vm);
  const t0 = Date.now();
  await backend.stop(s.project, 'web', { timeout: 8 });
  const took = Date.now() - t0;
  assert.equal(pidAlive(pid) && procs(vmFile(s.projDir, 'web', 'pid')).length > 0, false);
  assert.ok(took < 5000, `stopped by the in-guest poweroff, not after the grace period (${took} ms)`);
  assert.equal(readFileSync(join(root, 'poweroff-ran'), 'utf8'), 'ran\n');
  const stderr = await readFile(vmFile(s.projDir, 'web', 'qemuStderr'), 'utf8');
  assert.doesNotMatch(stderr, /signal 15/, 'never SIGTERMed');
});

test('the in-guest poweroff goes only to a guest with the pinned host key, as exec does; another key: nothing sent, SIGTERM', async () => {
  const hostKey = (await readFile(join(sshd.dir, 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const otherKey = (await readFile(`${sshd.wrongKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  for (const [pinned, reaches] of [
    [hostKey, true],
    [otherKey, false],
  ] as const) {
    const s = setup({ ssh: { user: sshd.user, privateKey: sshd.key } }, 'ignore-powerdown');
    const backend = createQemuBackend({ stateRoot: s.stateRoot, env: s.env, acpiPatienceMs: 300, termGraceMs: 3000 });
    await writeFile(join(root, 'target-pidfile'), vmFile(s.projDir, 'web', 'pid'));
    await rm(join(root, 'poweroff-ran'), { force: true });
    await backend.prepare(s.project, s.vm, { recreateDisk: false });
    const instanceId = (await readFile(vmFile(s.projDir, 'web', 'instanceId'), 'utf8')).trim();
    await writePin(vmFile(s.projDir, 'web', 'knownHosts'), { instanceId, alias: hostAlias('own', 'web'), keys: [pinned] });
    await backend.start(s.project, s.vm);
    await backend.stop(s.project, 'web', { timeout: 2 });
    const stderr = await readFile(vmFile(s.projDir, 'web', 'qemuStderr'), 'utf8');
    if (reaches) {
      assert.equal(readFileSync(join(root, 'poweroff-ran'), 'utf8'), 'ran\n');
      assert.doesNotMatch(stderr, /signal 15/, 'never SIGTERMed');
    } else {
      assert.equal(existsSync(join(root, 'poweroff-ran')), false, 'the poweroff command reached a guest with another host key');
      assert.match(stderr, /signal 15/, 'stopped by SIGTERM after the grace period');
    }
    // the pin is the VM's, untouched
    assert.match(await readFile(vmFile(s.projDir, 'web', 'knownHosts'), 'utf8'), new RegExp(pinned.split(' ')[1].replace(/[+/]/g, '\\$&')));
  }
});

test('destroy of a VM with nothing that outlives it does not wait for a shutdown; with a named volume it stops gracefully', async () => {
  const s = setup({ stopGracePeriod: 30 }, 'ignore-powerdown', { FAKE_QEMU_GUEST_SSH: '' });
  await s.backend.prepare(s.project, s.vm, { recreateDisk: false });
  await s.backend.start(s.project, s.vm);
  const t0 = Date.now();
  await s.backend.destroy(s.project, 'web');
  const took = Date.now() - t0;
  assert.ok(took < 3000, `destroy took ${took} ms (it waited 30 s for a guest that ignores ACPI before)`);

  const v = setup({ stopGracePeriod: 30, volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }] });
  v.project.volumes = { data: { size: 1 } };
  await v.backend.prepare(v.project, v.vm, { recreateDisk: false });
  await v.backend.start(v.project, v.vm);
  const log = vmFile(v.projDir, 'web', 'qemuStderr');
  const stderrBefore = join(root, 'stderr-copy');
  await v.backend.stop(v.project, 'web', { timeout: 30 }); // graceful: the fake acts on ACPI
  await writeFile(stderrBefore, await readFile(log, 'utf8'));
  assert.doesNotMatch(readFileSync(stderrBefore, 'utf8'), /signal 15/);
  await v.backend.destroy(v.project, 'web');
});
