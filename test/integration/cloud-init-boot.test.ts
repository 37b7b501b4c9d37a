/**
 * Issue 15 §3b: `cloud-init status --wait` runs once per guest boot. Against a real OpenSSH
 * server on loopback whose sessions find a fake `cloud-init` (it counts its runs): the first
 * wait runs it and reports the guest's boot id; a wait with that boot id recorded does not run
 * it; a different recorded id (the guest rebooted) runs it again.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitForSsh } from '../../src/ssh/ready.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let tools = '';
const runs = async (): Promise<number> => (await readFile(join(tools, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

before(async () => {
  tools = await mkdtemp(join(tmpdir(), 'tend-ci-tools-'));
  await writeFile(join(tools, 'cloud-init'), `#!/bin/sh\necho "$*" >> ${tools}/runs\nexit 0\n`);
  await chmod(join(tools, 'cloud-init'), 0o755);
  sshd = await startTestSshd({ pathDirs: [tools] });
});

after(async () => {
  await sshd.dispose();
  await rm(tools, { recursive: true, force: true });
});

test('cloud-init is waited for once per guest boot (its boot id recorded)', async () => {
  const hostBoot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  const target = { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.key };
  const done: string[] = [];
  const wait = (recorded: string | null) =>
    waitForSsh({
      ...target,
      timeoutMs: 20_000,
      cloudInit: true,
      cloudInitBoot: { recorded, done: async (b) => void done.push(b) },
      // no cloud-init run directory (whatever this host has): the fake `cloud-init status --wait` waits
      guestPaths: { cloudInitRunDir: join(tools, 'no-run-dir'), hostKeys: join(tools, 'no-keys', '*.pub') },
    });

  await wait(null);
  assert.equal(await runs(), 1, 'the first wait runs cloud-init status --wait');
  assert.deepEqual(done, [hostBoot], "and records the guest's boot id");

  await wait(hostBoot);
  assert.equal(await runs(), 1, 'same boot: not run again');
  assert.deepEqual(done, [hostBoot]);

  await wait('00000000-0000-4000-8000-000000000000');
  assert.equal(await runs(), 2, 'another boot: run again');
  assert.deepEqual(done, [hostBoot, hostBoot]);
});
