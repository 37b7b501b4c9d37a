/**
 * The accelerator probe with the real qemu-system-x86_64. This host (like nested-virtualisation
 * CI runners) has a /dev/kvm whose guests do not run: `auto` must pick TCG and say why.
 * On a host where KVM really works, set TEND_TEST_KVM_WORKS=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseAccel, clearAccelCache, probeAccel } from '../../src/qemu/accel.js';
import { doctor } from '../../src/qemu/doctor.js';
import { BackendError } from '../../schemas/errors.js';

const kvmWorks = process.env.TEND_TEST_KVM_WORKS === '1';
const fake = fileURLToPath(new URL('../fake-qemu/qemu-system-x86_64', import.meta.url));

test('auto picks a working accelerator for real, with the reason KVM was not used, within a few seconds', async () => {
  clearAccelCache();
  const t0 = Date.now();
  const choice = await chooseAccel('auto');
  const took = Date.now() - t0;
  assert.ok(took < 12_000, `probe took ${took} ms`);
  if (kvmWorks) {
    assert.deepEqual(choice, { accel: 'kvm', reason: null });
    return;
  }
  assert.equal(choice.accel, 'tcg');
  assert.match(choice.reason ?? '', /^KVM: /);
  // cached: the second ask does not boot another guest
  const t1 = Date.now();
  assert.deepEqual(await chooseAccel('auto'), choice);
  assert.ok(Date.now() - t1 < 50);
});

test('accel kvm requested where KVM does not work is an error that says why', async () => {
  if (kvmWorks) {
    assert.equal((await chooseAccel('kvm')).accel, 'kvm');
    return;
  }
  await assert.rejects(
    chooseAccel('kvm'),
    (e: unknown) => e instanceof BackendError && e.reason === 'KvmUnavailable' && /KVM: /.test(e.message),
  );
});

test('the TCG probe really runs the test guest', async () => {
  const r = await probeAccel('tcg', { fresh: true });
  assert.equal(r.ok, true, r.reason ?? '');
  assert.equal(r.reason, null);
});

test('the probe fails when the binary cannot run, and picks KVM when a KVM guest runs fast', async () => {
  const missing = await probeAccel('tcg', { binary: '/nonexistent/qemu-system-x86_64', fresh: true });
  assert.equal(missing.ok, false);
  assert.match(missing.reason ?? '', /cannot run/);
  const env = { ...process.env, FAKE_QEMU_KVM: 'ok' };
  assert.deepEqual(await chooseAccel('auto', { binary: fake, env, fresh: true, kvmDevice: '/dev/null' }), { accel: 'kvm', reason: null });
  const noDev = await chooseAccel('auto', { binary: fake, env, fresh: true, kvmDevice: '/nonexistent/kvm' });
  assert.equal(noDev.accel, 'tcg');
  assert.match(noDev.reason ?? '', /does not exist/);
});

test('doctor reports versions, the working accelerator, seed, ssh and a writable state dir', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tend-doctor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await doctor({ stateRoot: join(dir, 'state') });
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'JSON-serialisable');
  assert.equal(r.qemu.found, true);
  assert.match(r.qemu.version ?? '', /QEMU emulator version/);
  assert.match(r.qemuImg.version ?? '', /qemu-img version/);
  assert.equal(r.accel.tcg.works, true);
  assert.equal(r.accel.auto, kvmWorks ? 'kvm' : 'tcg');
  if (!kvmWorks) assert.match(r.accel.kvm.reason ?? '', /^KVM: /);
  assert.equal(r.seed.works, true);
  assert.equal(r.ssh.found, true);
  assert.equal(r.stateDir.writable, true);
  assert.deepEqual(r.problems, []);

  await writeFile(join(dir, 'a-file'), '');
  const unwritable = join(dir, 'a-file', 'state');
  const bad = await doctor({ stateRoot: unwritable, env: { PATH: '/nonexistent' } });
  assert.equal(bad.qemu.found, false);
  assert.equal(bad.stateDir.writable, false);
  assert.ok(bad.problems.some((p) => p.includes('qemu-system-x86_64 not found')));
  assert.ok(bad.problems.some((p) => p.includes(unwritable)));
  assert.equal(bad.accel.auto, null);
});
