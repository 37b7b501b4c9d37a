/**
 * Issue 15 §3c: the cloud-init stage waits in the guest's shell, not in cloud-init's Python
 * (`cloud-init status --wait` costs a TCG guest seconds of CPU while cloud-init still runs).
 *
 * Against a real OpenSSH server on loopback whose sessions find a fake `cloud-init` (it counts
 * its runs and exits with the status in a file) and a temp directory standing for the guest's
 * /run/cloud-init: readiness ends only once `result.json` is there and says no errors; errors,
 * or a guest without cloud-init's generator, are judged by `cloud-init status --wait`; the
 * connection's host key counts as final only when the guest lists it among its host keys.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { openReadySsh, type GuestPaths } from '../../src/ssh/ready.js';
import { TendError } from '../../schemas/errors.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let work = '';
let run = '';
const count = async (file: string): Promise<number> =>
  (await readFile(join(work, file), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const runs = (): Promise<number> => count('runs');
const syncs = (): Promise<number> => count('syncs');

/** result.json as cloud-init writes it (json.dumps with indent=1, sorted keys) */
const result = (errors: string[]): string =>
  JSON.stringify({ v1: { datasource: 'DataSourceNoCloud [seed=/dev/vdb][dsmode=net]', errors } }, null, 1);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tend-ciwait-'));
  const bin = join(work, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'cloud-init'), `#!/bin/sh\necho "$*" >> ${work}/runs\nexit $(cat ${work}/rc 2>/dev/null || echo 0)\n`, {
    mode: 0o755,
  });
  // and a `sync` that counts its runs too (the guest's filesystems flushed once cloud-init is done)
  await writeFile(join(bin, 'sync'), `#!/bin/sh\necho sync >> ${work}/syncs\n`, { mode: 0o755 });
  sshd = await startTestSshd({ pathDirs: [bin] });
});

beforeEach(async () => {
  run = await mkdtemp(join(work, 'run-'));
  await rm(join(work, 'runs'), { force: true });
  await rm(join(work, 'rc'), { force: true });
  await rm(join(work, 'syncs'), { force: true });
});

after(async () => {
  await sshd.dispose();
  await rm(work, { recursive: true, force: true });
});

const wait = (hostKeys = join(sshd.dir, 'host_ed25519.pub')) => {
  const guestPaths: GuestPaths = { cloudInitRunDir: run, hostKeys };
  return openReadySsh({
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    privateKey: sshd.key,
    timeoutMs: 20_000,
    cloudInit: true,
    guestPaths,
  }).then((r) => {
    r.client.on('error', () => {});
    r.client.end();
    return r;
  });
};

test('while cloud-init runs, readiness waits for its result.json and never starts cloud-init status', async () => {
  await writeFile(join(run, 'enabled'), '');
  await writeFile(join(run, 'status.json'), '{"v1": {"stage": "modules-final"}}');
  let settled = false;
  const p = wait().finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(settled, false, 'not ready while result.json is missing (cloud-init still running)');
  assert.equal(await syncs(), 0);
  await writeFile(join(run, 'result.json'), result([]));
  const r = await p;
  assert.equal(await runs(), 0, "cloud-init's Python was not started");
  // what cloud-init made (host keys, network config) is on disk before Ready: a crash right after
  // Ready left empty host key files on a real guest, and an sshd that never started again
  assert.equal(await syncs(), 1, "the guest's filesystems are flushed once cloud-init is done");
  assert.equal(r.hostKeyFinal, true, 'the presented key is the one the guest lists: final, the connection can be kept');
});

test('a host key the guest does not list is not final: the caller must connect again', async () => {
  await writeFile(join(run, 'enabled'), '');
  await writeFile(join(run, 'result.json'), result([]));
  const other = join(work, 'other');
  await mkdir(other);
  await writeFile(
    join(other, 'ssh_host_ed25519_key.pub'),
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUcYmS0l0Z6M3o2mFY8Q0YcUOXcK4a5Zy9c2e7m5YyM x\n',
  );
  const r = await wait(join(other, 'ssh_host_*_key.pub'));
  assert.equal(r.hostKeyFinal, false);
});

test("errors in result.json: cloud-init's own verdict (status --wait) fails the stage", async () => {
  await writeFile(join(run, 'enabled'), '');
  await writeFile(join(run, 'result.json'), result(["('scripts_user', RuntimeError('runparts: 1 failures'))"]));
  await writeFile(join(work, 'rc'), '1');
  await assert.rejects(wait(), (e: unknown) => e instanceof TendError && e.reason === 'CloudInitFailed');
  assert.ok((await runs()) >= 1, 'cloud-init status was asked');
  assert.equal(await syncs(), 0, 'not done: nothing to flush for');
});

test('no generator mark (another init system, cloud-init disabled): cloud-init status --wait decides', async () => {
  const r = await wait();
  assert.equal(await runs(), 1);
  assert.equal(r.hostKeyFinal, true);
});
