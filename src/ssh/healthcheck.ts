/**
 * Healthchecks with docker compose semantics, run in the guest (over SSH, through a `probe`
 * the caller supplies), as the last readiness stage:
 *   - the test runs at once, then every `interval` seconds;
 *   - one run longer than `timeout` seconds is a failure;
 *   - failures while `startPeriod` seconds have not passed since the first run do not count
 *     (a success during it makes the VM healthy at once);
 *   - `retries` consecutive counted failures make it unhealthy: HealthcheckFailed, naming the
 *     test, its exit status and its last output.
 * Differences from docker: docker waits one interval before the first run; tend runs at once,
 * because here the check gates readiness and the guest is already up (SSH works).
 */
import type { Clock } from '../../schemas/ports.js';
import type { HealthcheckSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';

export interface ProbeResult {
  /** exit status; null when the run did not finish (timeout, lost session) */
  code: number | null;
  /** stdout and stderr, as the guest wrote them */
  output: string;
}

/**
 * Runs one shell command in the guest within `timeoutMs`. A timeout or a lost connection
 * resolves with code null; errors that retrying cannot fix (wrong key, changed host key) reject.
 */
export type HealthProbe = (command: string, timeoutMs: number, signal?: AbortSignal) => Promise<ProbeResult>;

export interface HealthAttempt {
  attempt: number;
  ok: boolean;
  code: number | null;
  /** this failure counted towards `retries` (false during the start period) */
  counted: boolean;
  failures: number;
  output: string;
}

export interface WaitHealthyOptions {
  clock: Clock;
  signal?: AbortSignal;
  onAttempt?: (a: HealthAttempt) => void;
  /** VM name, for the "check it by hand" hint */
  vm?: string;
}

/** POSIX-shell quoting of one word (bare when it is safe). */
function quoteWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The shell command line for a test argv (["sh","-c",S] stays a shell script). */
export function healthcheckCommand(test: readonly string[]): string {
  return test.map(quoteWord).join(' ');
}

/** The test as a user wrote it, for messages. */
export function describeTest(test: readonly string[]): string {
  if (test.length === 3 && test[0] === 'sh' && test[1] === '-c') return test[2];
  return test.join(' ');
}

function lastLines(s: string, n = 10): string {
  return s.trimEnd().split('\n').slice(-n).join('\n');
}

/** Resolves when the test passes; throws HealthcheckFailed after `retries` counted failures. */
export async function waitHealthy(hc: HealthcheckSpec, probe: HealthProbe, opts: WaitHealthyOptions): Promise<{ attempts: number }> {
  const { clock, signal } = opts;
  const command = healthcheckCommand(hc.test);
  const start = clock.now();
  let failures = 0;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    // a probe error (wrong key, changed host key, abort) is not a health verdict: it propagates
    const r = await probe(command, hc.timeout * 1000, signal);
    if (r.code === 0) {
      opts.onAttempt?.({ attempt, ok: true, code: 0, counted: false, failures, output: r.output });
      return { attempts: attempt };
    }
    const counted = clock.now() - start >= hc.startPeriod * 1000;
    if (counted) failures++;
    opts.onAttempt?.({ attempt, ok: false, code: r.code, counted, failures, output: r.output });
    if (failures >= hc.retries) {
      const status = r.code === null ? `did not finish within ${hc.timeout} s` : `exit status ${r.code}`;
      const out = lastLines(r.output);
      throw new BackendError(
        'HealthcheckFailed',
        `healthcheck "${describeTest(hc.test)}" failed ${failures} time${failures === 1 ? '' : 's'} in a row (${status})` +
          (out ? `; last output:\n  ${out.split('\n').join('\n  ')}` : '; it printed nothing') +
          `\ncheck it by hand: tend exec ${opts.vm ?? 'VM'} -- ${command}`,
      );
    }
    await clock.sleep(hc.interval * 1000, signal);
  }
}
