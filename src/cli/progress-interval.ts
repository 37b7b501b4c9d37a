/**
 * How often a wait that goes on gets a line when output is not redrawn in place (piped, --json):
 * a VM still in one step, a command still waiting for the project lock. $TEND_PROGRESS_INTERVAL
 * (a duration), else 10 s.
 */
import { parseDuration } from '../../schemas/units.js';

export const PROGRESS_INTERVAL_ENV = 'TEND_PROGRESS_INTERVAL';
export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;

export function progressIntervalMs(env: NodeJS.ProcessEnv): number {
  const v = env[PROGRESS_INTERVAL_ENV];
  const s = v ? parseDuration(v) : null;
  return s !== null && s > 0 ? s * 1000 : DEFAULT_PROGRESS_INTERVAL_MS;
}
