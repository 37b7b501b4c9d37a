/**
 * The per-project lock: mutating commands (converge, stop, destroy, ...) hold it so two tend
 * processes never act on the same VMs at once. proper-lockfile does the atomic part (a mkdir'd
 * lock folder kept fresh by mtime); next to it the holder records who it is, so a waiting or
 * refused command can say "project locked by pid 1234 (tend watch) since 19:42:03". A lock whose
 * recorded holder pid is dead is taken over at once.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import type { Clock } from '../../schemas/ports.js';
import { systemClock } from './clock.js';
import { LockError } from '../../schemas/errors.js';
import { ensureDir, writeFileAtomic } from './atomic.js';
import { PROJECT_FILES } from './paths.js';
import { pidAlive } from '../pid.js';

export { pidAlive };

export interface LockHolder {
  pid: number;
  command: string;
  /** ISO time the lock was taken */
  since: string;
}

export interface LockOptions {
  /** who is taking the lock, shown to whoever waits ("tend converge") */
  command: string;
  /** give up after this long (ms) */
  timeoutMs: number;
  /** false: fail at once when the lock is held (--no-wait) */
  wait: boolean;
  /** how often to retry while waiting (ms); default 200 */
  pollMs?: number;
  clock?: Clock;
}

export const HOLDER_SUFFIX = '.holder.json';

export function lockPath(projDir: string): string {
  return join(projDir, PROJECT_FILES.lock);
}

export function holderPath(projDir: string): string {
  return lockPath(projDir) + HOLDER_SUFFIX;
}

/** Who holds the lock now, as recorded next to it; undefined when unknown or unreadable. */
export function readHolder(projDir: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(holderPath(projDir), 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && typeof h.command === 'string' && typeof h.since === 'string') return h as LockHolder;
  } catch {
    // missing or half-written: the holder is unknown
  }
  return undefined;
}

export function describeHolder(h: LockHolder | undefined): string {
  if (!h) return 'project locked by another tend process';
  const since = new Date(h.since);
  const when = Number.isNaN(since.getTime()) ? h.since : since.toTimeString().slice(0, 8);
  return `project locked by pid ${h.pid} (${h.command}) since ${when}`;
}

/**
 * Run `fn` holding the project's lock. The lock is released whatever `fn` does (returns,
 * throws). Throws LockError naming the holder when it cannot be had (at once with wait: false,
 * else after timeoutMs).
 */
export async function withProjectLock<T>(projDir: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const release = await acquireProjectLock(projDir, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Take the lock; resolves to its release function. Prefer withProjectLock. */
export async function acquireProjectLock(projDir: string, opts: LockOptions): Promise<() => Promise<void>> {
  const clock = opts.clock ?? systemClock;
  const pollMs = opts.pollMs ?? 200;
  await ensureDir(projDir);
  const file = lockPath(projDir);
  const started = clock.now();
  let compromised: Error | undefined;
  for (;;) {
    let releaseLock: (() => Promise<void>) | undefined;
    try {
      releaseLock = await lockfile.lock(projDir, {
        lockfilePath: file,
        realpath: false,
        retries: 0,
        stale: 30_000,
        update: 10_000,
        onCompromised: (err) => {
          compromised = err;
        },
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new LockError(`cannot take the project lock ${file}: ${(err as Error).message}`, { cause: err });
      }
      const holder = readHolder(projDir);
      if (holder && holder.pid !== process.pid && !pidAlive(holder.pid)) {
        // The recorded holder is gone: its lock is stale, whatever its mtime says.
        rmSync(file, { recursive: true, force: true });
        rmSync(holderPath(projDir), { force: true });
        continue;
      }
      const waited = clock.now() - started;
      if (!opts.wait) throw new LockError(`${describeHolder(holder)} (--no-wait given)`, { cause: err });
      if (waited >= opts.timeoutMs) {
        throw new LockError(`${describeHolder(holder)}; gave up after waiting ${Math.round(waited / 1000)}s (--lock-timeout)`, {
          cause: err,
        });
      }
      await clock.sleep(Math.min(pollMs, Math.max(1, opts.timeoutMs - waited)));
      continue;
    }
    const holder: LockHolder = { pid: process.pid, command: opts.command, since: new Date(clock.now()).toISOString() };
    try {
      await writeFileAtomic(holderPath(projDir), JSON.stringify(holder) + '\n');
    } catch (err) {
      await releaseLock();
      throw new LockError(`cannot record the project lock holder: ${(err as Error).message}`, { cause: err });
    }
    const release = releaseLock;
    return async () => {
      rmSync(holderPath(projDir), { force: true });
      try {
        await release();
      } catch (err) {
        // Released already (compromised and removed by someone else): nothing left to free.
        if (!compromised && (err as NodeJS.ErrnoException).code !== 'ERELEASED') throw err;
      }
    };
  }
}
