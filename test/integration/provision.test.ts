/**
 * Provisioning and host-key pinning through the real SSH guest (createSshGuest) against a real
 * OpenSSH server on loopback. The "guest" is this machine, so steps write under a temp folder
 * and a counter file shows which steps really ran.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyDefaults } from '../../schemas/defaults.js';
import type { Project, ProvisionStep, VmSpec } from '../../schemas/model.js';
import { TendError } from '../../src/errors.js';
import { createSshGuest } from '../../src/ssh/guest.js';
import { projectDir, vmDir, vmFile } from '../../src/state/paths.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let root = '';
let work = '';
let project: Project;
let projDir = '';

function reason(r: string, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TendError, `expected a TendError, got ${String(err)}`);
    assert.equal(err.reason, r, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

function vmWith(steps: ProvisionStep[], key = sshd.key): VmSpec {
  return applyDefaults({ name: 'web', image: { kind: 'path', ref: '/nonexistent.qcow2' }, cloudInit: null, ssh: { user: sshd.user, privateKey: key }, provision: steps });
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
    const broken: ProvisionStep[] = [steps[0], { kind: 'shell', inline: ['echo about to fail', 'echo "no such package: frobnicate" >&2', 'exit 42'] }, steps[2], steps[3]];
    const vm = vmWith(broken);
    await assert.rejects(
      guest.provision(withVm(vm), vm, { force: false }),
      reason('ProvisionStepFailed', /web: provision step 2\/4: shell "echo about to fail" \(\+2 lines\) failed with exit status 42; last output:[\s\S]*no such package: frobnicate/),
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
    await assert.rejects(guest.provision(withVm(vm), vm, { force: true }), reason('SshAuthFailed', new RegExp(`user ${sshd.user} with key .*id_wrong`)));
    assert.deepEqual(await counter(), []);
  });
});

describe('readiness, reconnect and host keys', () => {
  test('waitReady waits for an sshd that restarts, then provisioning works again', async () => {
    await sshd.stop();
    const stages: string[] = [];
    const guest = createSshGuest({ stateRoot: root, readyTimeoutMs: 30_000, onOutput: (_vm, line) => stages.push(line) });
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
    const guest = createSshGuest({ stateRoot: root, readyTimeoutMs: 20_000 });
    const vm = vmWith(steps);
    await guest.waitReady(withVm(vm), vm);
    const pinned = await readFile(vmFile(projDir, 'web', 'knownHosts'), 'utf8');
    assert.match(pinned, /^# instance-id iid-2$/m);
    assert.match(pinned, /^tend-demo-web ssh-ed25519 \S+$/m);

    await sshd.newHostKey();
    await sshd.restart();
    await writeFile(join(work, 'counter'), '');
    await assert.rejects(guest.provision(withVm(vm), vm, { force: true }), reason('HostKeyChanged', /changed on the same disk.*delete .*known_hosts/s));
    await assert.rejects(guest.waitReady(withVm(vm), vm), reason('HostKeyChanged'));
    assert.deepEqual(await counter(), [], 'nothing ran against the unknown host');
    assert.equal(await readFile(vmFile(projDir, 'web', 'knownHosts'), 'utf8'), pinned, 'the pin was not overwritten');
  });

  test('a recreated disk (new instance-id) re-pins the new key without complaint', async () => {
    await writeFile(vmFile(projDir, 'web', 'instanceId'), 'iid-3\n');
    const guest = createSshGuest({ stateRoot: root, readyTimeoutMs: 20_000 });
    const vm = vmWith(steps);
    await guest.waitReady(withVm(vm), vm);
    assert.match(await readFile(vmFile(projDir, 'web', 'knownHosts'), 'utf8'), /^# instance-id iid-3$/m);
    await guest.provision(withVm(vm), vm, { force: false });
    assert.deepEqual(await counter(), ['run1', 'run2', 'run4']);
  });
});
