/**
 * The per-project lock: mutating commands (converge, stop, destroy, ...) hold it so two tend
 * processes never act on the same VMs at once. proper-lockfile does the atomic part (a mkdir'd
 * lock folder kept fresh by mtime); next to it the holder records who it is, so a waiting or
 * refused command can say "project locked by pid 1234 (tend watch) since 19:42:03". A lock whose
 * recorded holder pid is dead is taken over at once.
 *
 * Between creating the lock folder and recording the holder there is a window a crash can hit
 * (a lock with no holder). So a taker first leaves a claim (`project.lock.claim-<pid>`), then
 * creates the lock, records itself, and removes its claim. A holder-less lock whose claimants
 * are all gone (no live claim, and the lock is older than a moment) was left by a crash: it is
 * taken over at once, and `onNote` says so.
 */
import { chmodSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import type { Clock } from '../../schemas/ports.js';
import { systemClock } from './clock.js';
import { LockError } from '../../schemas/errors.js';
import { DIR_MODE, ensureDir, readJsonSync, writeFileAtomic } from './atomic.js';
import { validateLockHolder } from './validators.generated.js';
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
  /** told when a stale lock is taken over (the CLI prints it as a warning) */
  onNote?: (message: string) => void;
  /**
   * told at once when the lock is held and the command waits, then every `waitNoteMs`: who holds
   * it and how long the command will still wait (the CLI prints it)
   */
  onWait?: (message: string) => void;
  /** how often `onWait` hears again while waiting (ms); default 10 s */
  waitNoteMs?: number;
}

export const lockHolderSchema = {
  $id: 'tend:state/lock-holder',
  type: 'object',
  required: ['pid', 'command', 'since'],
  properties: { pid: { type: 'integer', minimum: 1 }, command: { type: 'string' }, since: { type: 'string' } },
} as const;

export const HOLDER_SUFFIX = '.holder.json';

export function lockPath(projDir: string): string {
  return join(projDir, PROJECT_FILES.lock);
}

export function holderPath(projDir: string): string {
  return lockPath(projDir) + HOLDER_SUFFIX;
}

export const CLAIM_INFIX = '.claim-';

/** The claim a taker leaves before creating the lock (removed once its holder record is written). */
export function claimPath(projDir: string, pid: number = process.pid): string {
  return `${lockPath(projDir)}${CLAIM_INFIX}${pid}`;
}

/** Pids of the claims next to the lock, live or dead. */
function claimPids(projDir: string): number[] {
  const prefix = PROJECT_FILES.lock + CLAIM_INFIX;
  try {
    return readdirSync(projDir)
      .filter((n) => n.startsWith(prefix))
      .map((n) => Number(n.slice(prefix.length)))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** A holder-less lock older than this, with no live claimant, was left by a crash. */
export const ORPHAN_LOCK_GRACE_MS = 1000;

/**
 * Why a lock with no recorded holder is stale, or null when it may still be in the hands of a
 * live process (a live claimant other than us, or too young to judge).
 */
function orphanedLock(projDir: string, now: number): string | null {
  let age: number;
  try {
    age = now - statSync(lockPath(projDir)).mtimeMs;
  } catch {
    return null; // gone meanwhile: the next try takes it
  }
  const claims = claimPids(projDir).filter((p) => p !== process.pid);
  const live = claims.filter((p) => pidAlive(p));
  if (live.length > 0) return null;
  const dead = claims.filter((p) => !pidAlive(p));
  for (const p of dead) rmSync(claimPath(projDir, p), { force: true });
  if (dead.length > 0) return `its creator (pid ${dead.join(', ')}) is gone`;
  if (age >= ORPHAN_LOCK_GRACE_MS) return `no process claims it (created ${Math.round(age / 1000)}s ago)`;
  return null;
}

/** Who holds the lock now, as recorded next to it; undefined when unknown or unreadable. */
export function readHolder(projDir: string): LockHolder | undefined {
  try {
    // missing, half-written or damaged: the holder is unknown
    return readJsonSync<LockHolder>(holderPath(projDir), validateLockHolder);
  } catch {
    return undefined;
  }
}

/** When the holder took the lock, as a local time of day ("19:42:03"). */
function sinceOf(h: LockHolder): string {
  const since = new Date(h.since);
  return Number.isNaN(since.getTime()) ? h.since : since.toTimeString().slice(0, 8);
}

export function describeHolder(h: LockHolder | undefined): string {
  if (!h) return 'project locked by another tend process';
  return `project locked by pid ${h.pid} (${h.command}) since ${sinceOf(h)}`;
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
}

/** "waiting for the project lock: held by pid 42 (tend watch) since 19:42:03; waiting up to 5m more (...)" */
export function waitMessage(holder: LockHolder | undefined, waitedMs: number, timeoutMs: number): string {
  const who = holder ? `held by pid ${holder.pid} (${holder.command}) since ${sinceOf(holder)}` : 'held by another tend process';
  const left = Math.max(0, timeoutMs - waitedMs);
  const waited = waitedMs >= 1000 ? `waited ${seconds(waitedMs)}, ` : '';
  return `waiting for the project lock: ${who}; ${waited}waiting up to ${seconds(left)} more (--lock-timeout; --no-wait fails at once)`;
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
  const claim = claimPath(projDir);
  let lastWaitNote: number | null = null;
  for (;;) {
    let releaseLock: (() => Promise<void>) | undefined;
    try {
      writeFileSync(claim, `${process.pid}\n`, { mode: 0o600 });
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
      rmSync(claim, { force: true });
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new LockError(`cannot take the project lock ${file}: ${(err as Error).message}`, { cause: err });
      }
      const holder = readHolder(projDir);
      if (holder && holder.pid !== process.pid && !pidAlive(holder.pid)) {
        // The recorded holder is gone: its lock is stale, whatever its mtime says.
        rmSync(file, { recursive: true, force: true });
        rmSync(holderPath(projDir), { force: true });
        opts.onNote?.(`took over the project lock of pid ${holder.pid} (${holder.command}), which is gone`);
        continue;
      }
      const orphan = holder ? null : orphanedLock(projDir, Date.now());
      if (orphan !== null) {
        // Created but never recorded (a crash in between): nobody will ever release it.
        rmSync(file, { recursive: true, force: true });
        rmSync(holderPath(projDir), { force: true });
        opts.onNote?.(`took over a project lock with no holder recorded: ${orphan}`);
        continue;
      }
      const waited = clock.now() - started;
      if (!opts.wait) throw new LockError(`${describeHolder(holder)} (--no-wait given)`, { cause: err });
      if (waited >= opts.timeoutMs) {
        throw new LockError(`${describeHolder(holder)}; gave up after waiting ${Math.round(waited / 1000)}s (--lock-timeout)`, {
          cause: err,
        });
      }
      if (opts.onWait && (lastWaitNote === null || clock.now() - lastWaitNote >= (opts.waitNoteMs ?? 10_000))) {
        lastWaitNote = clock.now();
        opts.onWait(waitMessage(holder, waited, opts.timeoutMs));
      }
      await clock.sleep(Math.min(pollMs, Math.max(1, opts.timeoutMs - waited)));
      continue;
    }
    // proper-lockfile makes its folder with the umask's mode: state folders are owner-only
    chmodSync(file, DIR_MODE);
    const holder: LockHolder = { pid: process.pid, command: opts.command, since: new Date(clock.now()).toISOString() };
    try {
      await writeFileAtomic(holderPath(projDir), JSON.stringify(holder) + '\n');
      rmSync(claim, { force: true });
    } catch (err) {
      rmSync(claim, { force: true });
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
