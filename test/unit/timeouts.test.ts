import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TIMEOUTS, stageTimeoutMs } from '../../src/timeouts.js';

const vm = (t: Partial<Record<'start' | 'ssh' | 'login' | 'cloudInit', number | null>> = {}) => ({
  timeouts: { start: null, ssh: null, login: null, cloudInit: null, ...t },
});

test('a stage limit is the flag, else the file, else the environment, else the default', () => {
  const env = { TEND_SSH_TIMEOUT: '90', TEND_CLOUD_INIT_TIMEOUT: '15m' };
  assert.equal(stageTimeoutMs('ssh', vm({ ssh: 120 }), { ssh: 5000 }, env), 5000, 'flag first');
  assert.equal(stageTimeoutMs('ssh', vm({ ssh: 120 }), {}, env), 120_000, 'then the file');
  assert.equal(stageTimeoutMs('ssh', vm(), undefined, env), 90_000, 'then $TEND_SSH_TIMEOUT (seconds)');
  assert.equal(stageTimeoutMs('cloudInit', vm(), undefined, env), 900_000, 'durations work in the environment too');
  assert.equal(stageTimeoutMs('login', vm(), undefined, {}), DEFAULT_TIMEOUTS.login * 1000, 'then the default');
  assert.equal(stageTimeoutMs('start', vm(), undefined, {}), 30_000);
});

test('$TEND_READY_TIMEOUT covers the guest stages that have no variable of their own, not QEMU start', () => {
  const env = { TEND_READY_TIMEOUT: '2m', TEND_LOGIN_TIMEOUT: '10' };
  assert.equal(stageTimeoutMs('ssh', vm(), undefined, env), 120_000);
  assert.equal(stageTimeoutMs('cloudInit', vm(), undefined, env), 120_000);
  assert.equal(stageTimeoutMs('login', vm(), undefined, env), 10_000);
  assert.equal(stageTimeoutMs('start', vm(), undefined, env), 30_000);
});

test('an unusable environment value is ignored, not a zero limit', () => {
  for (const v of ['', 'soon', '0', '-5'])
    assert.equal(stageTimeoutMs('ssh', vm(), undefined, { TEND_SSH_TIMEOUT: v }), 600_000, JSON.stringify(v));
});
