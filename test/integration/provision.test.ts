/**
 * Provisioning and host-key pinning through the real SSH guest (createSshGuest) against a real
 * OpenSSH server on loopback. The "guest" is this machine, so steps write under a temp folder
 * and a counter file shows which steps really ran.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyDefaults } from '../../schemas/defaults.js';
import type { Project, ProvisionStep, VmSpec } from '../../schemas/model.js';
import { execa } from 'execa';
import { consoleCommand } from '../../src/cli/commands/console.js';
import { convergeCommand } from '../../src/cli/commands/converge.js';
import { eventsCommand } from '../../src/cli/commands/events.js';
import { logsCommand } from '../../src/cli/commands/logs.js';
import { rewriteFollowFlag } from '../../src/cli/argv.js';
import { provisionCommand } from '../../src/cli/commands/provision.js';
import { sshCommand } from '../../src/cli/commands/ssh.js';
import { loadContext, type GlobalOptions } from '../../src/cli/context.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { createSshGuest } from '../../src/ssh/guest.js';
import { appendEvent } from '../../src/state/events.js';
import { projectDir, socketPath, vmDir, vmFile } from '../../src/state/paths.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';
import { rejectsWith } from '../helpers/rejects.js';

let sshd: TestSshd;
let root = '';
let work = '';
let project: Project;
let projDir = '';

function vmWith(steps: ProvisionStep[], key = sshd.key): VmSpec {
  return applyDefaults({
    name: 'web',
    image: { kind: 'path', ref: '/nonexistent.qcow2' },
    cloudInit: null,
    ssh: { user: sshd.user, privateKey: key },
    provision: steps,
  });
}

function withVm(vm: VmSpec): Project {
  return { ...project, vms: [vm] };
}

const counter = (): Promise<string[]> =>
  readFile(join(work, 'counter'), 'utf8').then(
    (t) => t.trim().split('\n').filter(Boolean),
    () => [],
  );

let steps: ProvisionStep[];

before(async () => {
  sshd = await startTestSshd();
  root = await mkdtemp(join(tmpdir(), 'tend-prov-state-'));
  work = await mkdtemp(join(tmpdir(), 'tend-prov-guest-'));
  project = { name: 'demo', dir: work, files: [], vms: [], volumes: {} };
  projDir = projectDir(root, project.name, project.dir);
  await mkdir(vmDir(projDir, 'web'), { recursive: true });
  await writeFile(vmFile(projDir, 'web', 'ports'), JSON.stringify({ ssh: `127.0.0.1:${sshd.port}` }));
  await writeFile(vmFile(projDir, 'web', 'instanceId'), 'iid-1\n');
  await writeFile(join(work, 's2.sh'), `#!/bin/sh\necho run2 >> ${work}/counter\necho hello from script\n`);
  await writeFile(join(work, 'f3.txt'), 'version one\n');
  steps = [
    { kind: 'shell', inline: [`echo run1 >> ${work}/counter`, 'echo step-one-output'] },
    { kind: 'shell', script: join(work, 's2.sh') },
    { kind: 'file', source: join(work, 'f3.txt'), destination: join(work, 'guest', 'etc', 'f3.txt') },
    { kind: 'shell', inline: [`echo run4 >> ${work}/counter`, `cat ${work}/guest/etc/f3.txt > ${work}/copy4`] },
  ];
});

after(async () => {
  await sshd.dispose();
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('provisioning over SSH', () => {
  test('first run executes inline, script and file steps for real, streaming output live and into provision.log', async () => {
    const lines: string[] = [];
    const guest = createSshGuest({ stateRoot: root, onOutput: (vm, line, stream) => lines.push(`${vm} ${stream} ${line}`) });
    const vm = vmWith(steps);
    assert.equal(await guest.provisionPending?.(withVm(vm), vm, []), true);
    await guest.provision(withVm(vm), vm, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
    assert.equal(await readFile(join(work, 'guest', 'etc', 'f3.txt'), 'utf8'), 'version one\n');
    assert.equal(await readFile(join(work, 'copy4'), 'utf8'), 'version one\n');
    // the script was uploaded where the issue says
    assert.match(await readFile('/tmp/tend-provision-2.sh', 'utf8'), /hello from script/);
    assert.ok(lines.includes('web stdout step-one-output'), lines.join('\n'));
    assert.ok(lines.includes('web stdout hello from script'));
    assert.ok(lines.some((l) => /^web status step 3\/4: upload f3\.txt/.test(l)));
    const log = await readFile(vmFile(projDir, 'web', 'provisionLog'), 'utf8');
    assert.match(log, /--- step 1\/4: shell "echo run1/);
    assert.match(log, /\[stdout\] hello from script/);
  });

  test('second run executes nothing', async () => {
    const guest = createSshGuest({ stateRoot: root });
    const vm = vmWith(steps);
    assert.equal(await guest.provisionPending?.(withVm(vm), vm, []), false);
    await guest.provision(withVm(vm), vm, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
  });

  test('editing step 3 of 4 (the uploaded file) re-runs steps 3 and 4 only', async () => {
    await writeFile(join(work, 'f3.txt'), 'version two\n');
    const guest = createSshGuest({ stateRoot: root });
    const vm = vmWith(steps);
    assert.equal(await guest.provisionPending?.(withVm(vm), vm, []), true);
    await guest.provision(withVm(vm), vm, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4', 'run4']);
    assert.equal(await readFile(join(work, 'guest', 'etc', 'f3.txt'), 'utf8'), 'version two\n');
    assert.equal(await readFile(join(work, 'copy4'), 'utf8'), 'version two\n');
  });

  test('a failing step stops the sequence and reports the step, its exit status and its last output; the fixed step then completes', async () => {
    const guest = createSshGuest({ stateRoot: root });
    const broken: ProvisionStep[] = [
      steps[0],
      { kind: 'shell', inline: ['echo about to fail', 'echo "no such package: frobnicate" >&2', 'exit 42'] },
      steps[2],
      steps[3],
    ];
    const vm = vmWith(broken);
    await assert.rejects(
      guest.provision(withVm(vm), vm, { force: false }),
      rejectsWith(
        'ProvisionStepFailed',
        /web: provision step 2\/4: shell "echo about to fail" \(\+2 lines\) failed with exit status 42; last output:[\s\S]*no such package: frobnicate/,
      ),
    );
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4', 'run4'], 'steps 3 and 4 did not run; step 1 was cached');
    assert.match(await readFile(vmFile(projDir, 'web', 'provisionLog'), 'utf8'), /step 2\/4.*failed with exit status 42/);
    // still pending: the failure was not recorded as a success
    assert.equal(await guest.provisionPending?.(withVm(vm), vm, []), true);

    const fixed: ProvisionStep[] = [steps[0], { kind: 'shell', inline: [`echo fixed2 >> ${work}/counter`] }, steps[2], steps[3]];
    const vm2 = vmWith(fixed);
    await guest.provision(withVm(vm2), vm2, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4', 'run4', 'fixed2', 'run4']);
    assert.equal(await guest.provisionPending?.(withVm(vm2), vm2, []), false);
  });

  test('force (tend provision) re-runs every step', async () => {
    await writeFile(join(work, 'counter'), '');
    const guest = createSshGuest({ stateRoot: root });
    const vm = vmWith(steps);
    await guest.provision(withVm(vm), vm, { force: true });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
  });

  test('a new disk (new instance-id) resets the record: everything runs again', async () => {
    await writeFile(join(work, 'counter'), '');
    await writeFile(vmFile(projDir, 'web', 'instanceId'), 'iid-2\n');
    const guest = createSshGuest({ stateRoot: root });
    const vm = vmWith(steps);
    await guest.provision(withVm(vm), vm, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
  });

  test('a key the guest does not accept: a clear error naming user and key, nothing runs', async () => {
    await writeFile(join(work, 'counter'), '');
    const guest = createSshGuest({ stateRoot: root });
    const vm = vmWith(steps, sshd.wrongKey);
    await assert.rejects(
      guest.provision(withVm(vm), vm, { force: true }),
      rejectsWith('SshAuthFailed', new RegExp(`user ${sshd.user} with key .*id_wrong`)),
    );
    assert.deepEqual(await counter(), []);
  });
});

describe('readiness, reconnect and host keys', () => {
  test('waitReady waits for an sshd that restarts, then provisioning works again', async () => {
    await sshd.stop();
    const stages: string[] = [];
    const guest = createSshGuest({
      stateRoot: root,
      timeouts: { ssh: 30_000, login: 30_000, cloudInit: 30_000 },
      onOutput: (_vm, line) => stages.push(line),
    });
    const vm = vmWith(steps);
    const ready = guest.waitReady(withVm(vm), vm);
    await new Promise((r) => setTimeout(r, 1500));
    await sshd.start();
    await ready;
    assert.ok(stages.some((s) => s.startsWith('waiting for SSH')));
    await writeFile(join(work, 'counter'), '');
    await guest.provision(withVm(vm), vm, { force: true });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
  });

  test('the host key is pinned once ready; a different key on the same disk is refused as a possible MITM', async () => {
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    const vm = vmWith(steps);
    await guest.waitReady(withVm(vm), vm);
    const pinned = await readFile(vmFile(projDir, 'web', 'knownHosts'), 'utf8');
    assert.match(pinned, /^# instance-id iid-2$/m);
    assert.match(pinned, /^tend-demo-web ssh-ed25519 \S+$/m);

    await sshd.newHostKey();
    await sshd.restart();
    await writeFile(join(work, 'counter'), '');
    await assert.rejects(
      guest.provision(withVm(vm), vm, { force: true }),
      rejectsWith('HostKeyChanged', /changed on the same disk.*delete .*known_hosts/s),
    );
    await assert.rejects(guest.waitReady(withVm(vm), vm), rejectsWith('HostKeyChanged'));
    assert.deepEqual(await counter(), [], 'nothing ran against the unknown host');
    assert.equal(await readFile(vmFile(projDir, 'web', 'knownHosts'), 'utf8'), pinned, 'the pin was not overwritten');
  });

  test(
    "each stage has its own limit: the VM's login timeout from the file fails a refused key at the login stage; a flag overrides the file",
    { timeout: 30_000 },
    async () => {
      const stages: string[] = [];
      const guest = createSshGuest({ stateRoot: root, onOutput: (_vm, line) => stages.push(line) });
      const vm = { ...vmWith(steps, sshd.wrongKey), timeouts: { start: null, ssh: 600, login: 2, cloudInit: null } };
      await assert.rejects(
        guest.waitReady(withVm(vm), vm),
        rejectsWith('SshLoginFailed', /SSH banner seen on .* but login refused for user/),
      );
      assert.ok(
        stages.some((s) => s.startsWith('logging in as')),
        'the login stage was shown',
      );
      const flagged = createSshGuest({ stateRoot: root, timeouts: { login: 1500 } });
      const slow = { ...vm, timeouts: { ...vm.timeouts, login: 600 } };
      await assert.rejects(flagged.waitReady(withVm(slow), slow), rejectsWith('SshLoginFailed'));
    },
  );

  test('a recreated disk (new instance-id) re-pins the new key without complaint', async () => {
    await writeFile(vmFile(projDir, 'web', 'instanceId'), 'iid-3\n');
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    const vm = vmWith(steps);
    await guest.waitReady(withVm(vm), vm);
    assert.match(await readFile(vmFile(projDir, 'web', 'knownHosts'), 'utf8'), /^# instance-id iid-3$/m);
    await guest.provision(withVm(vm), vm, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
  });
  test('provisionNext: provisioning runs on the connection readiness ended with (no new login)', async () => {
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    const vm = vmWith(steps);
    // a new disk: every step is due
    await writeFile(vmFile(projDir, 'web', 'instanceId'), 'iid-4\n');
    await guest.waitReady(withVm(vm), vm, undefined, { provisionNext: true });
    // the listener goes away; an open connection lives on in its own sshd process
    await sshd.stop();
    try {
      await writeFile(join(work, 'counter'), '');
      await guest.provision(withVm(vm), vm, { force: false });
      assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
    } finally {
      await sshd.start();
    }
    // every step recorded: nothing is kept, so no connection outlives the converge
    const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const before = sockets();
    await guest.waitReady(withVm(vm), vm, undefined, { provisionNext: true });
    await guest.provision(withVm(vm), vm, { force: false });
    for (let i = 0; i < 50 && sockets() > before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(sockets(), before, 'no SSH connection left open');
    // without provisionNext nothing is kept: provisioning needs a new login, which fails now
    await guest.waitReady(withVm(vm), vm);
    await sshd.stop();
    try {
      await assert.rejects(guest.provision(withVm(vm), vm, { force: true }));
    } finally {
      await sshd.start();
    }
  });
});

describe('guest access commands', () => {
  let g: GlobalOptions & { mem: MemoryBackend };
  let cwd = '';
  let pd = '';
  const out = join(tmpdir(), `tend-cmd-out-${process.pid}`);

  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'tend-cmd-proj-'));
    await writeFile(join(cwd, 'base.qcow2'), '');
    await writeFile(
      join(cwd, 'VMFile.kdl'),
      `vm "web" {\n  image "base.qcow2"\n  cloud-init #false\n  ssh {\n    user "${sshd.user}"\n    private-key "${sshd.key}"\n  }\n` +
        `  provision "shell" {\n    inline "echo prov >> ${out}; echo provisioning-says-hi"\n  }\n}\n`,
    );
    const clock = new ManualClock();
    const mem = new MemoryBackend({ now: () => clock.now() });
    g = { cwd, stateDir: root, backend: mem, guest: mem, clock, wait: false, mem };
    await convergeCommand(g);
    pd = (await loadContext(g)).projDir;
    await mkdir(vmDir(pd, 'web'), { recursive: true });
    await writeFile(vmFile(pd, 'web', 'ports'), JSON.stringify({ ssh: `127.0.0.1:${sshd.port}` }));
    await writeFile(vmFile(pd, 'web', 'instanceId'), 'iid-cmd\n');
  });

  after(async () => {
    await rm(cwd, { recursive: true, force: true });
    await rm(out, { force: true });
  });

  const realGuest = (): GlobalOptions => ({
    ...g,
    guest: createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } }),
  });
  const runSsh = async (argv: string[]): Promise<{ code: number; stdout: string }> => {
    const r = await execa('ssh', ['-o', 'BatchMode=yes', ...argv], { reject: false, stdin: 'ignore' });
    return { code: r.exitCode ?? -1, stdout: r.stdout };
  };

  test('tend ssh before any pin: system ssh with the resolved user and key runs the command', async () => {
    let got = { code: -1, stdout: '' };
    const r = await sshCommand({
      ...g,
      argv: ['sh', '-c', 'echo "answer $((6*7))"'],
      run: async (argv) => (got = await runSsh(argv)).code,
    });
    assert.equal(r.vm, 'web', 'the only VM is inferred');
    assert.equal(r.code, 0);
    assert.equal(got.stdout, 'answer 42');
    assert.ok(
      r.argv.join(' ').includes(`-l ${sshd.user} -- 127.0.0.1`) && r.argv.includes(sshd.key) && r.argv.includes('StrictHostKeyChecking=no'),
      r.argv.join(' '),
    );
  });

  test('tend ssh -- CMD in a one-VM project: the first word is the command; a typo of the VM name is an error', async () => {
    const r = await sshCommand({ ...g, name: 'uptime', argv: ['-p'], run: async () => 0 });
    assert.equal(r.vm, 'web');
    assert.deepEqual(r.argv.slice(-3), ['--', '127.0.0.1', 'uptime -p']);
    await assert.rejects(sshCommand({ ...g, name: 'wbe', run: async () => 0 }), rejectsWith('UnknownVm', /did you mean "web"/));
  });

  test('tend provision re-runs every step on the running VM, each time, and pins the host key', async () => {
    await rm(out, { force: true });
    const r1 = await provisionCommand(realGuest());
    assert.equal(r1.ok, true, JSON.stringify(r1.vms));
    const r2 = await provisionCommand({ ...realGuest(), names: ['web'] });
    assert.equal(r2.ok, true, JSON.stringify(r2.vms));
    assert.deepEqual((await readFile(out, 'utf8')).trim().split('\n'), ['prov', 'prov']);
    assert.match(await readFile(vmFile(pd, 'web', 'knownHosts'), 'utf8'), /^tend-.*-web ssh-ed25519 /m);
  });

  test('tend ssh with a pin: the system ssh checks the pinned key, and refuses a changed one', async () => {
    let got = { code: -1, stdout: '' };
    const ok = await sshCommand({ ...g, name: 'web', argv: ['echo', 'pinned ok'], run: async (argv) => (got = await runSsh(argv)).code });
    assert.equal(ok.code, 0);
    assert.equal(got.stdout, 'pinned ok');
    assert.ok(ok.argv.includes('StrictHostKeyChecking=yes'));
    const pin = await readFile(vmFile(pd, 'web', 'knownHosts'), 'utf8');
    await writeFile(
      vmFile(pd, 'web', 'knownHosts'),
      pin.replace(/ssh-ed25519 \S+/, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBeW0K1cbQ0BfQ3hSUSm6ZqKx1CT5kT1Ep1r5tqdL8Xy'),
    );
    const bad = await sshCommand({ ...g, name: 'web', argv: ['true'], run: async (argv) => (await runSsh(argv)).code });
    assert.equal(bad.code, 255, 'ssh refuses a host whose key does not match the pin');
    await writeFile(vmFile(pd, 'web', 'knownHosts'), pin);
  });

  test('tend provision names a stopped VM: refused, nothing started', async () => {
    await g.mem.stop((await loadContext(g)).project, 'web', { timeout: 0 });
    await assert.rejects(provisionCommand({ ...realGuest(), names: ['web'] }), rejectsWith('VmNotRunning', /web is not running/));
    assert.equal(g.mem.vms.get('web')?.power, 'stopped');
  });

  test("tend logs --provision shows provision.log (-n keeps the last lines); the default shows the VM's events", async () => {
    const all: string[] = [];
    await logsCommand({ ...g, source: 'provision', write: (l) => all.push(l) });
    assert.ok(
      all.some((l) => l.endsWith('[stdout] provisioning-says-hi')),
      all.join('\n'),
    );
    const last: string[] = [];
    await logsCommand({ ...g, source: 'provision', lines: 1, write: (l) => last.push(l) });
    assert.deepEqual(last, all.slice(-1));
    const ev: string[] = [];
    await logsCommand({ ...g, write: (l) => ev.push(l) });
    assert.ok(
      ev.some((l) => /VmProvisioned/.test(l)),
      ev.join('\n'),
    );
    await assert.rejects(logsCommand({ ...g, source: 'console', write: () => {} }), rejectsWith('NoLog', /no console log yet/));
  });

  test('tend logs -f --console follows the log as it grows, until interrupted', async () => {
    await writeFile(vmFile(pd, 'web', 'consoleLog'), 'Booting Linux\n');
    const seen: string[] = [];
    const ctl = new AbortController();
    const p = logsCommand({ ...g, source: 'console', follow: true, pollMs: 50, signal: ctl.signal, write: (l) => seen.push(l) });
    await new Promise((r) => setTimeout(r, 200));
    await appendFile(vmFile(pd, 'web', 'consoleLog'), 'web login: ');
    await appendFile(vmFile(pd, 'web', 'consoleLog'), '\nsecond line\n');
    await new Promise((r) => setTimeout(r, 300));
    ctl.abort();
    await p;
    assert.deepEqual(seen, ['Booting Linux', 'web login: ', 'second line']);
  });

  test('-f means --follow after logs and events, and --file everywhere else', () => {
    const n = ['node', 'tend'];
    assert.deepEqual(rewriteFollowFlag([...n, 'logs', 'web', '-f']), [...n, 'logs', 'web', '--follow']);
    assert.deepEqual(rewriteFollowFlag([...n, '-f', 'VMFile.kdl', 'events', '-f', '--json']), [
      ...n,
      '-f',
      'VMFile.kdl',
      'events',
      '--follow',
      '--json',
    ]);
    assert.deepEqual(rewriteFollowFlag([...n, 'up', '-f', 'tend.yaml']), [...n, 'up', '-f', 'tend.yaml']);
    assert.deepEqual(rewriteFollowFlag([...n, 'exec', 'web', '--', 'tail', '-f', 'x']), [...n, 'exec', 'web', '--', 'tail', '-f', 'x']);
  });

  test('tend events -f passes the backlog, then new events as they are appended', async () => {
    const seen: string[] = [];
    const ctl = new AbortController();
    const p = eventsCommand({ ...g, vm: 'web', follow: true, pollMs: 50, signal: ctl.signal, onEvent: (e) => seen.push(e.reason) });
    await new Promise((r) => setTimeout(r, 200));
    const before = seen.length;
    assert.ok(before > 0, 'backlog shown');
    await appendEvent(pd, {
      time: new Date().toISOString(),
      type: 'Warning',
      reason: 'ProvisionStepFailed',
      vm: 'web',
      message: 'step 1 failed',
    });
    await appendEvent(pd, { time: new Date().toISOString(), type: 'Normal', reason: 'VmStarted', vm: 'other', message: 'not ours' });
    await new Promise((r) => setTimeout(r, 300));
    ctl.abort();
    await p;
    assert.deepEqual(seen.slice(before), ['ProvisionStepFailed']);
  });

  // the console goes through the backend's console role: the QEMU backend over this state dir
  const qemuBackend = (): ReturnType<typeof createQemuBackend> => createQemuBackend({ stateRoot: root });

  test('tend console: bytes both ways through the serial socket; Ctrl-] detaches without reaching the guest', async () => {
    const path = socketPath(pd, 'web', 'serial');
    const got: Buffer[] = [];
    let guestSide: Socket | undefined;
    const srv = createNetServer((s) => {
      guestSide = s;
      s.on('data', (b: Buffer) => got.push(b));
      s.write('Debian GNU/Linux 12 web ttyS0\r\nweb login: ');
    });
    await new Promise<void>((r) => srv.listen(path, r));
    try {
      const input = new PassThrough();
      const output = new PassThrough();
      const shown: Buffer[] = [];
      output.on('data', (b: Buffer) => shown.push(b));
      let attached = '';
      const p = consoleCommand({ ...g, backend: qemuBackend(), input, output, onAttached: (vm) => (attached = vm) });
      await new Promise((r) => setTimeout(r, 200));
      input.write('root\r');
      await new Promise((r) => setTimeout(r, 100));
      input.write(Buffer.from([0x6c, 0x73, 0x1d, 0x78]));
      const r = await p;
      assert.equal(r.end, 'detached');
      assert.equal(attached, 'web');
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(Buffer.concat(got).toString('latin1'), 'root\rls', 'bytes before Ctrl-] reach the guest, Ctrl-] and after do not');
      assert.match(Buffer.concat(shown).toString(), /web login: $/);
      assert.ok(guestSide);
    } finally {
      srv.close();
    }
  });

  test('tend console on a VM without a console socket says it is not running', async () => {
    await rm(socketPath(pd, 'web', 'serial'), { force: true });
    await assert.rejects(
      consoleCommand({ ...g, backend: qemuBackend(), input: new PassThrough(), output: new PassThrough() }),
      rejectsWith('ConsoleUnavailable', /is the VM running/),
    );
  });
});
