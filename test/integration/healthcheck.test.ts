/**
 * The healthcheck as the last readiness stage of the real SSH guest, against a real OpenSSH
 * server on loopback: the test command runs "in the guest" (this machine) over SSH.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { applyDefaults } from '../../schemas/defaults.js';
import type { HealthcheckSpec, Project, VmSpec } from '../../schemas/model.js';
import { TendError } from '../../schemas/errors.js';
import { createSshGuest } from '../../src/ssh/guest.js';
import { projectDir, vmDir, vmFile } from '../../src/state/paths.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let root = '';
let work = '';
let project: Project;

function vmWith(hc: Partial<HealthcheckSpec> & { test: string[] }): VmSpec {
  const vm = applyDefaults({
    name: 'db',
    image: { kind: 'path', ref: '/nonexistent.qcow2' },
    cloudInit: null,
    ssh: { user: sshd.user, privateKey: sshd.key },
  });
  return { ...vm, healthcheck: { interval: 0.2, retries: 3, startPeriod: 0, timeout: 5, ...hc } };
}

const attempts = async (): Promise<number> =>
  (await readFile(join(work, 'hc-count'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tend-hc-state-'));
  work = await mkdtemp(join(tmpdir(), 'tend-hc-guest-'));
  // a fake cloud-init in the guest's PATH: `status --wait` leaves a mark and succeeds
  await mkdir(join(work, 'bin'));
  await writeFile(join(work, 'bin', 'cloud-init'), `#!/bin/sh\necho done > ${work}/cloud-init-done\nexit 0\n`, { mode: 0o755 });
  sshd = await startTestSshd({ pathDirs: [join(work, 'bin')] });
  project = { name: 'demo', dir: work, files: [], vms: [], volumes: {} };
  const projDir = projectDir(root, project.name, project.dir);
  await mkdir(vmDir(projDir, 'db'), { recursive: true });
  await writeFile(vmFile(projDir, 'db', 'ports'), JSON.stringify({ ssh: `127.0.0.1:${sshd.port}` }));
  await writeFile(vmFile(projDir, 'db', 'instanceId'), 'iid-1\n');
});

beforeEach(async () => {
  await rm(join(work, 'hc-count'), { force: true });
  await rm(join(work, 'healthy'), { force: true });
});

after(async () => {
  await sshd.dispose();
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

const check = (): string[] => ['sh', '-c', `echo x >> ${work}/hc-count; echo "checking"; test -f ${work}/healthy`];

describe('healthcheck as a readiness stage', () => {
  test('a passing test: ready and healthy after one run in the guest', async () => {
    await writeFile(join(work, 'healthy'), '');
    const lines: string[] = [];
    const guest = createSshGuest({
      stateRoot: root,
      timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 },
      onOutput: (_vm, l) => lines.push(l),
    });
    const vm = vmWith({ test: check() });
    await guest.waitReady({ ...project, vms: [vm] }, vm);
    assert.equal(await attempts(), 1);
    assert.ok(lines.some((l) => l.startsWith('running healthcheck "echo x >>')));
    assert.ok(lines.includes('healthy'));
  });

  test('a test that keeps failing: HealthcheckFailed after `retries` runs, naming the test and its last output', async () => {
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    const vm = vmWith({ test: ['sh', '-c', `echo x >> ${work}/hc-count; echo "db not accepting connections"; exit 3`], retries: 3 });
    await assert.rejects(guest.waitReady({ ...project, vms: [vm] }, vm), (err: unknown) => {
      assert.ok(err instanceof TendError);
      assert.equal(err.reason, 'HealthcheckFailed');
      assert.match(
        err.message,
        /^db: healthcheck "echo x >> .*exit 3" failed 3 times in a row \(exit status 3\); last output:\n\s+db not accepting connections/,
      );
      assert.match(err.message, /tend exec db -- sh -c/);
      return true;
    });
    assert.equal(await attempts(), 3);
  });

  test('a test that starts passing while retries remain: healthy', async () => {
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    // fails twice, then passes: counted by the test itself, so the result does not depend on the machine's speed
    const vm = vmWith({
      test: ['sh', '-c', `echo x >> ${work}/hc-count; test $(wc -l < ${work}/hc-count) -ge 3`],
      retries: 50,
      interval: 0.2,
    });
    await guest.waitReady({ ...project, vms: [vm] }, vm);
    assert.equal(await attempts(), 3);
  });

  test('failures inside start_period do not count towards retries', async () => {
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    const vm = vmWith({ test: check(), retries: 1, startPeriod: 1.5, interval: 0.3 });
    const t0 = Date.now();
    await assert.rejects(guest.waitReady({ ...project, vms: [vm] }, vm), /failed 1 time in a row/);
    // with retries 1 and no start period the first failure would end it; here it ran on through the start period
    assert.ok(Date.now() - t0 >= 1500, `gave up after ${Date.now() - t0} ms`);
    assert.ok((await attempts()) >= 2, 'uncounted runs during the start period before the one counted failure');
  });

  test('with cloud-init: the cloud-init stage passes first, then the healthcheck runs', async () => {
    const lines: string[] = [];
    const guest = createSshGuest({
      stateRoot: root,
      timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 },
      onOutput: (_vm, l) => lines.push(l),
    });
    const base = vmWith({ test: ['sh', '-c', `test -f ${work}/cloud-init-done`], retries: 1 });
    const vm = applyDefaults({ name: 'db', image: { kind: 'path', ref: '/x.qcow2' }, ssh: base.ssh });
    await guest.waitReady({ ...project, vms: [vm] }, { ...vm, healthcheck: base.healthcheck });
    const ci = lines.indexOf('waiting for cloud-init to finish');
    assert.ok(ci >= 0 && ci < lines.findIndex((l) => l.startsWith('running healthcheck')), lines.join('\n'));
    assert.ok(lines.includes('healthy'));
  });

  test('a run longer than `timeout` is a failure ("did not finish")', async () => {
    const guest = createSshGuest({ stateRoot: root, timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 } });
    // 3 s: long enough for the shell to print its first line on a loaded machine, far below the 30 s sleep
    const vm = vmWith({ test: ['sh', '-c', 'echo slow; sleep 30'], retries: 1, timeout: 3 });
    const t0 = Date.now();
    await assert.rejects(guest.waitReady({ ...project, vms: [vm] }, vm), /did not finish within 3 s\); last output:\n\s+slow/);
    assert.ok(Date.now() - t0 < 15_000);
  });
});
