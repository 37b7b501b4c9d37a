/** Compose healthcheck semantics (interval, retries, start_period, timeout) on a manual clock. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BackendError, TendError } from '../../schemas/errors.js';
import { healthcheckCommand, waitHealthy, type HealthAttempt, type ProbeResult } from '../../src/ssh/healthcheck.js';
import { ManualClock } from '../helpers/manual-clock.js';

const hc = (o: Partial<{ test: string[]; interval: number; retries: number; startPeriod: number; timeout: number }> = {}) => ({
  test: ['sh', '-c', 'curl -f http://localhost/ || exit 1'],
  interval: 5,
  retries: 3,
  startPeriod: 0,
  timeout: 2,
  ...o,
});

/** Runs `p` to completion, moving the manual clock one second whenever something sleeps. */
async function drive<T>(p: Promise<T>, clock: ManualClock): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 10_000 && !done; i++) {
    await new Promise((r) => setImmediate(r));
    if (clock.pendingSleeps > 0) clock.advance(1000);
  }
  return p;
}

/** A probe answering from a script (the last answer repeats), recording when it ran (s since start). */
function scripted(clock: ManualClock, answers: ProbeResult[]) {
  const t0 = clock.now();
  const calls: { at: number; command: string; timeoutMs: number }[] = [];
  const probe = async (command: string, timeoutMs: number): Promise<ProbeResult> => {
    calls.push({ at: (clock.now() - t0) / 1000, command, timeoutMs });
    return answers[Math.min(calls.length - 1, answers.length - 1)];
  };
  return { probe, calls };
}

const ok: ProbeResult = { code: 0, output: 'fine\n' };
const bad: ProbeResult = { code: 7, output: 'curl: (7) Failed to connect to localhost port 80\n' };

describe('waitHealthy', () => {
  test('a passing test makes the VM healthy at once, without waiting an interval', async () => {
    const clock = new ManualClock();
    const { probe, calls } = scripted(clock, [ok]);
    const r = await drive(waitHealthy(hc(), probe, { clock }), clock);
    assert.equal(r.attempts, 1);
    assert.deepEqual(
      calls.map((c) => c.at),
      [0],
    );
    assert.equal(calls[0].command, "sh -c 'curl -f http://localhost/ || exit 1'");
    assert.equal(calls[0].timeoutMs, 2000);
  });

  test('failures below `retries` are retried every interval until the test passes', async () => {
    const clock = new ManualClock();
    const { probe, calls } = scripted(clock, [bad, bad, ok]);
    const seen: HealthAttempt[] = [];
    const r = await drive(waitHealthy(hc({ retries: 3 }), probe, { clock, onAttempt: (a) => seen.push(a) }), clock);
    assert.equal(r.attempts, 3);
    assert.deepEqual(
      calls.map((c) => c.at),
      [0, 5, 10],
    );
    assert.deepEqual(
      seen.map((a) => [a.ok, a.failures]),
      [
        [false, 1],
        [false, 2],
        [true, 2],
      ],
    );
  });

  test('`retries` consecutive failures: HealthcheckFailed names the test, the exit status and the last output', async () => {
    const clock = new ManualClock();
    const { probe, calls } = scripted(clock, [bad]);
    await assert.rejects(drive(waitHealthy(hc({ retries: 3 }), probe, { clock }), clock), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal(err.reason, 'HealthcheckFailed');
      assert.match(err.message, /healthcheck "curl -f http:\/\/localhost\/ \|\| exit 1" failed 3 times in a row \(exit status 7\)/);
      assert.match(err.message, /Failed to connect to localhost port 80/);
      return true;
    });
    assert.equal(calls.length, 3);
  });

  test('failures during start_period do not count; the ones after it do', async () => {
    const clock = new ManualClock();
    const { probe, calls } = scripted(clock, [bad]);
    const seen: HealthAttempt[] = [];
    await assert.rejects(
      drive(waitHealthy(hc({ startPeriod: 20, interval: 5, retries: 2 }), probe, { clock, onAttempt: (a) => seen.push(a) }), clock),
      /failed 2 times in a row/,
    );
    assert.deepEqual(
      calls.map((c) => c.at),
      [0, 5, 10, 15, 20, 25],
    );
    assert.deepEqual(
      seen.map((a) => a.counted),
      [false, false, false, false, true, true],
    );
  });

  test('a success during start_period is healthy at once', async () => {
    const clock = new ManualClock();
    const { probe } = scripted(clock, [bad, bad, ok]);
    const r = await drive(waitHealthy(hc({ startPeriod: 60, retries: 1 }), probe, { clock }), clock);
    assert.equal(r.attempts, 3);
  });

  test('a run that exceeds `timeout` counts as a failure and is reported as such', async () => {
    const clock = new ManualClock();
    const { probe } = scripted(clock, [{ code: null, output: '' }]);
    await assert.rejects(
      drive(waitHealthy(hc({ retries: 1, timeout: 3 }), probe, { clock }), clock),
      /did not finish within 3 s\); it printed nothing/,
    );
  });

  test('an error that is not a verdict (changed host key) stops at once, without retries', async () => {
    const clock = new ManualClock();
    let n = 0;
    const probe = async (): Promise<ProbeResult> => {
      n++;
      throw new BackendError('HostKeyChanged', 'host key changed');
    };
    await assert.rejects(
      drive(waitHealthy(hc({ retries: 5 }), probe, { clock }), clock),
      (e: unknown) => e instanceof TendError && e.reason === 'HostKeyChanged',
    );
    assert.equal(n, 1);
  });

  test('an abort stops waiting', async () => {
    const clock = new ManualClock();
    const { probe } = scripted(clock, [bad]);
    const ctl = new AbortController();
    const p = waitHealthy(hc({ retries: 100 }), probe, { clock, signal: ctl.signal });
    await new Promise((r) => setImmediate(r));
    ctl.abort(new Error('stop now'));
    await assert.rejects(p, /stop now/);
  });
});

describe('healthcheckCommand', () => {
  test('exec form keeps argv words, quoting only where the shell needs it', () => {
    assert.equal(healthcheckCommand(['curl', '-f', 'http://localhost:8080/health']), 'curl -f http://localhost:8080/health');
    assert.equal(healthcheckCommand(['pg_isready', '-U', "o'brien db"]), `pg_isready -U 'o'\\''brien db'`);
  });
});
