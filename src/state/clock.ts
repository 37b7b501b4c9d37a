/**
 * The real clock: wall time and an abortable sleep. Tests use a manual clock instead
 * (test/helpers/manual-clock.ts), so timeouts and backoff are tested without sleeping.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../../schemas/ports.js';

export const systemClock: Clock = {
  now: () => Date.now(),
  /** Resolves after `ms`; rejects with an AbortError as soon as `signal` aborts. */
  sleep: async (ms: number, signal?: AbortSignal): Promise<void> => {
    await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined);
  },
};
