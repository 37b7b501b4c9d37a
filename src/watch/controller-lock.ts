/**
 * One controller per project: `tend watch` holds this lock (next to the project lock, which it
 * takes only pass by pass) for as long as it runs. A second `tend watch` on the same project
 * fails at once, naming the holder. proper-lockfile keeps the lock fresh; a lock whose recorded
 * holder is dead is taken over.
 */
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { LockError } from '../../schemas/errors.js';
import { DIR_MODE, ensureDir, readJsonSync, writeFileAtomic } from '../state/atomic.js';
import { validateLockHolder } from '../state/validators.generated.js';
import { describeHolder, pidAlive, type LockHolder } from '../state/lock.js';
import { PROJECT_FILES } from '../state/paths.js';

export function controllerLockPath(projDir: string): string {
  return join(projDir, PROJECT_FILES.watchLock);
}

function holderFile(projDir: string): string {
  return controllerLockPath(projDir) + '.holder.json';
}

export function readControllerHolder(projDir: string): LockHolder | undefined {
  try {
    // missing, half-written or damaged: the holder is unknown
    return readJsonSync<LockHolder>(holderFile(projDir), validateLockHolder);
  } catch {
    return undefined;
  }
}

/** Take the controller lock or throw LockError at once; resolves to its release function. */
export async function acquireControllerLock(projDir: string, command = 'tend watch'): Promise<() => Promise<void>> {
  await ensureDir(projDir);
  const file = controllerLockPath(projDir);
  for (let attempt = 0; ; attempt++) {
    let release: () => Promise<void>;
    try {
      // keyed by the lock's own path: proper-lockfile keeps one entry per `file` in a process,
      // and the project lock (taken pass by pass while this one is held) is keyed by projDir
      release = await lockfile.lock(file, {
        lockfilePath: file,
        realpath: false,
        retries: 0,
        stale: 30_000,
        update: 10_000,
        onCompromised: () => undefined,
      });
      // proper-lockfile makes its folder with the umask's mode: state folders are owner-only
      chmodSync(file, DIR_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED')
        throw new LockError(`cannot take the controller lock ${file}: ${(err as Error).message}`, { cause: err });
      const holder = readControllerHolder(projDir);
      if (attempt === 0 && holder && holder.pid !== process.pid && !pidAlive(holder.pid)) {
        rmSync(file, { recursive: true, force: true });
        rmSync(holderFile(projDir), { force: true });
        continue;
      }
      const who = describeHolder(holder).replace('project locked by', 'already watched by');
      throw new LockError(`${who}: one \`tend watch\` per project`, { cause: err });
    }
    const holder: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
    try {
      await writeFileAtomic(holderFile(projDir), JSON.stringify(holder) + '\n');
    } catch (err) {
      await release();
      throw new LockError(`cannot record the controller lock holder: ${(err as Error).message}`, { cause: err });
    }
    return async () => {
      rmSync(holderFile(projDir), { force: true });
      try {
        await release();
      } catch {
        // already released (compromised): nothing left to free
      }
    };
  }
}
