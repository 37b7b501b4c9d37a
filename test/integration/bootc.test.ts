/**
 * bootc VMs (vms.yml `source: {kind: bootc}`) on a host without a bootc image: this host cannot
 * pull one, so podman is a fake on PATH that logs its argv. What runs for real: the prerequisite
 * checks, the argv tend gives podman (privileged, the host's /dev shared, as ov does), the sparse
 * raw disk, qemu-img's conversion and the image store. What does not: bootc itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveImage } from '../../src/images/resolve.js';
import { bootcInstallArgv, bootcMissing } from '../../src/images/bootc.js';
import { inspectImage } from '../../src/images/store.js';
import { BackendError } from '../../schemas/errors.js';
import type { ImageSource } from '../../schemas/model.js';
import { doctorCommand } from '../../src/cli/commands/doctor.js';
import { imageCommand } from '../../src/cli/commands/image.js';

const work = mkdtempSync(join(tmpdir(), 'tend-bootc-'));
const src: ImageSource = {
  kind: 'bootc',
  ref: 'localhost/desk',
  format: null,
  checksum: null,
  os: null,
  bootc: { transport: 'registry', rootfs: 'xfs', rootSize: 10, kernelArgs: ['console=ttyS0'] },
};

/** PATH with only the tools a test wants (qemu-img stays reachable), and a fake podman when asked. */
function envWith(podman: 'none' | 'no-image' | 'ok'): NodeJS.ProcessEnv {
  const bin = mkdtempSync(join(work, 'bin-'));
  const log = join(bin, 'podman.log');
  if (podman !== 'none') {
    writeFileSync(
      join(bin, 'podman'),
      `#!/bin/sh
printf '%s\\n' "$*" >> ${log}
case "$1" in
  --version) echo "podman version 4.3.1" ;;
  image) [ "${podman}" = ok ] && exit 0 || exit 1 ;;
  run) exit 0 ;;
esac
`,
    );
    chmodSync(join(bin, 'podman'), 0o755);
  }
  return { ...process.env, PATH: `${bin}:/usr/bin:/bin`, TEND_TEST_PODMAN_LOG: log };
}

test('without podman: up fails at once, saying what is missing and how to get it; nothing is built', async () => {
  const env = envWith('none');
  const t0 = Date.now();
  const saved = process.env.PATH;
  process.env.PATH = env.PATH;
  try {
    await assert.rejects(
      resolveImage(join(work, 'state-a'), src, { diskGiB: 1 }),
      (e: unknown) => e instanceof BackendError && e.reason === 'BootcUnavailable' && /podman is not installed.*install it/.test(e.message),
    );
  } finally {
    process.env.PATH = saved;
  }
  assert.ok(Date.now() - t0 < 5000, 'fails at once');
  assert.equal(await inspectImage(join(work, 'state-a'), 'bootc:localhost/desk'), null);
});

test('podman without the image: the message names the image and how to pull or build it', async () => {
  const env = envWith('no-image');
  assert.match(
    (await bootcMissing({ ...src, kind: 'bootc' }, env)) ?? '',
    /localhost\/desk is not in podman's image storage: pull it \(podman pull localhost\/desk\)/,
  );
  assert.deepEqual(
    readFileSync(env.TEND_TEST_PODMAN_LOG as string, 'utf8')
      .trim()
      .split('\n'),
    ['--version', 'image exists localhost/desk'],
  );
});

test('podman and the image present: bootc install to-disk in a privileged container with the host /dev, then a stored qcow2', async () => {
  const env = envWith('ok');
  const saved = process.env.PATH;
  process.env.PATH = env.PATH;
  const root = join(work, 'state-b');
  try {
    const img = await resolveImage(root, src, { diskGiB: 1 });
    assert.equal(img.format, 'qcow2');
    assert.equal(img.virtualSize, 1024 ** 3);
    // built once: a second resolve uses the stored disk and runs nothing
    await resolveImage(root, src, { diskGiB: 1 });
  } finally {
    process.env.PATH = saved;
  }
  const calls = readFileSync(env.TEND_TEST_PODMAN_LOG as string, 'utf8')
    .trim()
    .split('\n');
  const runs = calls.filter((c) => c.startsWith('run '));
  assert.equal(runs.length, 1);
  const out = /-v (\S+):\/output/.exec(runs[0])?.[1] ?? '';
  assert.deepEqual(runs[0].split(' '), ['run', ...bootcInstallArgv({ ...src, kind: 'bootc' }, out).slice(1)]);
  assert.match(
    runs[0],
    /^run --rm --privileged --pid=host --security-opt label=type:unconfined_t -v \/dev:\/dev -v \/var\/lib\/containers:\/var\/lib\/containers -v \S+:\/output localhost\/desk bootc install to-disk --via-loopback --generic-image --wipe --filesystem xfs --root-size 10G --karg console=ttyS0 \/output\/disk\.raw$/,
  );
});

test('tend doctor names what a bootc VM of the project lacks', async () => {
  const dir = mkdtempSync(join(work, 'proj-'));
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(dir, 'vms.yml'), 'vms:\n  desk:\n    source: {kind: bootc, image: localhost/desk}\n');
  const env = envWith('no-image');
  const r = await doctorCommand({ cwd: dir, env, stateDir: join(dir, 'state') });
  assert.deepEqual(r.bootc, [
    {
      vm: 'desk',
      image: 'localhost/desk',
      missing:
        "the bootc image localhost/desk is not in podman's image storage: pull it (podman pull localhost/desk) or build it (podman build -t localhost/desk .)",
    },
  ]);
  assert.ok(r.report.problems.some((p) => p.startsWith('desk: the bootc image localhost/desk is not in')));
});

test('tend image build VM (ov vm build): podman and the image present builds the VM disk; without podman, the clear error at once', async () => {
  const dir = mkdtempSync(join(work, 'build-'));
  writeFileSync(join(dir, 'vms.yml'), 'vms:\n  desk:\n    source: {kind: bootc, image: localhost/desk}\n    disk_size: 2G\n');
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);

  const none = envWith('none');
  const t0 = Date.now();
  await assert.rejects(
    imageCommand({ verb: 'build', ref: 'desk', cwd: dir, stateDir, env: none }),
    (e: unknown) => e instanceof BackendError && e.reason === 'BootcUnavailable' && /podman is not installed.*install it/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 5000, 'fails at once');

  const ok = envWith('ok');
  const r = await imageCommand({ verb: 'build', ref: 'desk', cwd: dir, stateDir, env: ok });
  assert.ok(r.verb === 'build');
  assert.match(r.image.name, /^bootc:localhost\/desk@/);
  assert.equal(r.image.format, 'qcow2');
  const runs = readFileSync(ok.TEND_TEST_PODMAN_LOG as string, 'utf8')
    .trim()
    .split('\n')
    .filter((c) => c.startsWith('run '));
  assert.equal(runs.length, 1, 'bootc install ran once');
  assert.match(runs[0], /--privileged .*-v \/dev:\/dev .*localhost\/desk bootc install to-disk --via-loopback/);
  const stored = await inspectImage(stateDir, r.image.name);
  assert.equal(stored?.path, r.image.path, 'kept in the image store: `up` overlays it');
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', r.image.path], { encoding: 'utf8' })) as {
    'virtual-size': number;
  };
  assert.equal(info['virtual-size'], 2 * 1024 ** 3, "the VM's disk_size");

  // a VM whose image is not bootc, and a name that is neither: clear usage errors
  writeFileSync(join(dir, 'vms.yml'), 'vms:\n  web:\n    source: {kind: cloud_image, url: https://example.org/x.qcow2}\n');
  await assert.rejects(imageCommand({ verb: 'build', ref: 'web', cwd: dir, stateDir, env: ok }), /not a bootc image/);
});
