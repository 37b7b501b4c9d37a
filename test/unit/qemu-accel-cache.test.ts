import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCEL_VERDICT_TTL_MS, chooseAccel } from '../../src/qemu/accel.js';

const binary = '/nonexistent/qemu-system-x86_64';
const key = `${binary}\0${release()}\0/dev/kvm`;

test('accel auto: a verdict younger than a day is reused without probing', async () => {
  const cacheFile = join(mkdtempSync(join(tmpdir(), 'tend-accel-')), 'accel.json');
  writeFileSync(cacheFile, JSON.stringify({ key, at: 1000, choice: { accel: 'tcg', reason: 'KVM: cached reason' } }));
  const c = await chooseAccel('auto', { binary, cacheFile, now: () => 1000 + ACCEL_VERDICT_TTL_MS - 1 });
  assert.deepEqual(c, { accel: 'tcg', reason: 'KVM: cached reason' });
});

test("accel auto: an old verdict, another binary or doctor's fresh probe probe again and record it", async () => {
  const cacheFile = join(mkdtempSync(join(tmpdir(), 'tend-accel-')), 'accel.json');
  const nullKey = `${binary}\0${release()}\0/dev/null`;
  writeFileSync(cacheFile, JSON.stringify({ key: nullKey, at: 0, choice: { accel: 'kvm', reason: null } }));
  const c = await chooseAccel('auto', { binary, cacheFile, now: () => ACCEL_VERDICT_TTL_MS + 1, kvmDevice: '/dev/null' });
  assert.equal(c.accel, 'tcg'); // the probe of a missing binary cannot run KVM
  assert.match(c.reason ?? '', /KVM/);
  const saved = JSON.parse(readFileSync(cacheFile, 'utf8')) as { choice: { accel: string } };
  assert.equal(saved.choice.accel, 'tcg');
});

test('accel tcg never probes and kvm is never served from the cache', async () => {
  assert.deepEqual(await chooseAccel('tcg', { binary }), { accel: 'tcg', reason: null });
  const cacheFile = join(mkdtempSync(join(tmpdir(), 'tend-accel-')), 'accel.json');
  writeFileSync(cacheFile, JSON.stringify({ key, at: 0, choice: { accel: 'kvm', reason: null } }));
  await assert.rejects(chooseAccel('kvm', { binary, cacheFile, now: () => 1, kvmDevice: '/dev/null' }), /KvmUnavailable|kvm was requested/);
});
