/**
 * The guest image itself, without tend: boot it with a hand-written QEMU command line
 * (rawQemuArgv) and a NoCloud seed, and prove real cloud-init and sshd work in it.
 */
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { TendError } from '../../schemas/errors.js';
import { buildImage } from '../../src/images/build.js';
import { inspectImage } from '../../src/images/store.js';
import { sshExec } from '../../src/ssh/exec.js';
import { waitForSsh, type SshStage } from '../../src/ssh/ready.js';
import { bootRaw, findImage, freePort, generateKey, makeOverlay, makeSeedIso, tempProject } from './helpers.js';

test('the Debian 12 image boots under TCG, runs cloud-init from a NoCloud seed and accepts SSH', { timeout: 900_000 }, async (t) => {
  const image = await findImage();
  const before = await stat(image);
  const proj = await tempProject();
  t.after(() => proj.cleanup());

  const key = join(proj.scratch, 'id_ed25519');
  const pub = await generateKey(key);
  const hostname = 'tend-e2e-raw';
  const seed = join(proj.scratch, 'seed.iso');
  const seedTool = await makeSeedIso(seed, {
    metaData: `instance-id: iid-${hostname}\nlocal-hostname: ${hostname}\n`,
    userData: [
      '#cloud-config',
      `hostname: ${hostname}`,
      'users:',
      '  - default',
      '  - name: tester',
      '    shell: /bin/bash',
      "    sudo: 'ALL=(ALL) NOPASSWD:ALL'",
      '    ssh_authorized_keys:',
      `      - ${pub}`,
      '',
    ].join('\n'),
  });
  t.diagnostic(`seed built with ${seedTool}`);
  const disk = join(proj.scratch, 'disk.qcow2');
  await makeOverlay(image, disk, '4G');
  const sshPort = await freePort();
  const serialLog = join(proj.scratch, 'serial.log');
  const started = Date.now();
  const qemu = bootRaw({ disk, seed, sshPort, serialLog });
  let qemuErr = '';
  qemu.stderr?.on('data', (s: string) => (qemuErr += s));
  const exited = new Promise<never>((_, reject) =>
    qemu.on('exit', (code) => reject(new Error(`qemu exited early (code ${code}): ${qemuErr}`))),
  );
  t.after(() => {
    qemu.kill('SIGKILL');
  });

  const stages: SshStage[] = [];
  const target = { host: '127.0.0.1', port: sshPort, user: 'tester', privateKey: key };
  await Promise.race([waitForSsh({ ...target, timeoutMs: 600_000, cloudInit: true, onStage: (s) => stages.push(s) }), exited]);
  t.diagnostic(`SSH + cloud-init ready after ${Math.round((Date.now() - started) / 1000)} s`);
  assert.deepEqual(stages, ['banner', 'login', 'cloud-init']);

  const hn = await sshExec({ ...target, command: 'hostname', timeoutMs: 30_000 });
  assert.equal(hn.code, 0);
  assert.equal(hn.stdout.trim(), hostname);

  const ci = await sshExec({ ...target, command: 'cloud-init status', timeoutMs: 30_000 });
  assert.equal(ci.code, 0, ci.stdout + ci.stderr);
  assert.match(ci.stdout, /status: done/);

  const root = await sshExec({
    ...target,
    command: 'sudo -n id -u && findmnt -no SOURCE,FSTYPE / && cat /etc/machine-id',
    timeoutMs: 30_000,
  });
  assert.equal(root.code, 0, root.stderr);
  const [uid, mount, machineId] = root.stdout.trim().split('\n');
  assert.equal(uid, '0', 'the cloud-init user has passwordless sudo');
  assert.match(mount ?? '', /ext4/);
  assert.match(machineId ?? '', /^[0-9a-f]{32}$/, 'a fresh machine-id is generated on first boot');

  const def = await sshExec({ ...target, command: 'getent passwd debian && sudo -n -l -U debian', timeoutMs: 30_000 });
  assert.equal(def.code, 0, `the image's default cloud-init user is "debian" with sudo, as the catalog says: ${def.stderr}`);
  assert.match(def.stdout, /NOPASSWD: ALL/);

  const after = await stat(image);
  assert.equal(after.mtimeMs, before.mtimeMs, 'the base image is never written');
});

test('tend image build debian:bookworm registers the built image as debian:12 in the store', { timeout: 900_000 }, async (t) => {
  if (!process.env.TEND_E2E_IMAGE) await findImage(); // build (or reuse) the cached image first
  const proj = await tempProject();
  t.after(() => proj.cleanup());
  const lines: string[] = [];
  const img = await buildImage(proj.stateDir, 'debian:bookworm', { onProgress: (l) => lines.push(l) });
  assert.equal(img.name, 'debian:12');
  assert.equal(img.format, 'qcow2');
  assert.ok(img.path.startsWith(proj.stateDir), `stored under the state dir: ${img.path}`);
  const sha = createHash('sha256')
    .update(await readFile(img.path))
    .digest('hex');
  assert.equal(img.checksum, `sha256:${sha}`);
  const found = await inspectImage(proj.stateDir, 'debian:12');
  assert.equal(found?.path, img.path, 'image: debian:12 now resolves from the store, offline');
  assert.ok(
    lines.some((l) => l.includes('registering')),
    lines.join('\n'),
  );
});

test('tend image build refuses names it has no recipe for', async () => {
  const proj = await tempProject();
  try {
    await assert.rejects(buildImage(proj.stateDir, 'ubuntu:noble'), (err: unknown) => {
      assert.ok(err instanceof TendError);
      assert.equal(err.reason, 'ImageNotBuildable');
      assert.match(err.message, /debian:12/);
      return true;
    });
  } finally {
    await proj.cleanup();
  }
});
