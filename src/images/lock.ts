/**
 * Cross-process locks inside the image store (proper-lockfile): one per download and one for
 * the index, so two tend processes never download the same image twice at once or lose each
 * other's index updates. In-process callers are serialised too (proper-lockfile would refuse
 * the second taker in the same process).
 */
import lockfile from 'proper-lockfile';
import { BackendError } from '../../schemas/errors.js';
import { DIR_MODE, ensureDir } from '../state/atomic.js';
import { chmod } from 'node:fs/promises';
import { dirname } from 'node:path';

const chains = new Map<string, Promise<unknown>>();

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new BackendError('DownloadAborted', 'cancelled while waiting for the image store lock'));
      },
      { once: true },
    );
  });
}

async function acquire(path: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  await ensureDir(dirname(path));
  for (;;) {
    try {
      const release = await lockfile.lock(path, { realpath: false, stale: 30_000, update: 5_000, retries: 0 });
      // proper-lockfile makes its folder (`<path>.lock`) with the umask's mode: state folders are owner-only
      await chmod(`${path}.lock`, DIR_MODE).catch(() => undefined);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new BackendError('ImageStoreLockFailed', `cannot lock ${path}: ${(err as Error).message}`, { cause: err });
      }
      await sleep(250, signal);
    }
  }
}

/** Run `fn` holding the lock at `path` (a file that need not exist). */
export async function withStoreLock<T>(path: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const prev = chains.get(path) ?? Promise.resolve();
  const run = prev
    .catch(() => undefined)
    .then(async () => {
      const release = await acquire(path, signal);
      try {
        return await fn();
      } finally {
        await release().catch(() => undefined);
      }
    });
  chains.set(path, run);
  try {
    return await run;
  } finally {
    if (chains.get(path) === run) chains.delete(path);
  }
}
