/**
 * Watching the project files and every file they reference, for `tend watch`. chokidar watches
 * the *directories* of those files (depth 0), not the files themselves: an editor's atomic save
 * (write a temp file, rename it over the original; vim's backup-and-rename) replaces the inode,
 * which a per-file watch would lose. chokidar's `atomic` option turns an unlink followed by an
 * add of the same path into one change; events that arrive together are batched into one call.
 * Only the watched paths are reported; everything else in those directories is ignored.
 */
import { dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface FileWatcher {
  /** watch exactly these files from now on (absolute paths) */
  setPaths(paths: readonly string[]): void;
  /** resolves once the directories are being watched (after setPaths) */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export interface FileWatchOptions {
  /** called with the watched paths that changed, were added or removed */
  onChange: (paths: string[]) => void;
  onError?: (err: Error) => void;
  /** batching window for raw events (ms); default 10 */
  batchMs?: number;
}

export function watchFiles(initial: readonly string[], o: FileWatchOptions): FileWatcher {
  let files = new Set<string>();
  let dirs = new Set<string>();
  let watcher: FSWatcher | null = null;
  let readyP: Promise<void> = Promise.resolve();
  let batch = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const flush = (): void => {
    timer = null;
    const paths = [...batch];
    batch = new Set();
    if (paths.length > 0 && !closed) o.onChange(paths);
  };
  const onEvent = (path: string): void => {
    const abs = resolve(path);
    if (!files.has(abs)) return;
    batch.add(abs);
    timer ??= setTimeout(flush, o.batchMs ?? 10);
  };

  function setPaths(paths: readonly string[]): void {
    files = new Set(paths.map((p) => resolve(p)));
    const nextDirs = new Set([...files].map((f) => dirname(f)));
    const same = nextDirs.size === dirs.size && [...nextDirs].every((d) => dirs.has(d));
    if (same && watcher) return;
    const old = watcher;
    dirs = nextDirs;
    const w = watch([...dirs], {
      ignoreInitial: true,
      depth: 0,
      atomic: true,
      persistent: true,
      // ignore everything in those directories except the files we watch (the set may change)
      ignored: (p: string) => {
        const abs = resolve(p);
        return !dirs.has(abs) && !files.has(abs);
      },
    });
    for (const ev of ['add', 'change', 'unlink'] as const) w.on(ev, onEvent);
    w.on('error', (err: unknown) => o.onError?.(err instanceof Error ? err : new Error(String(err))));
    readyP = new Promise<void>((r) => w.once('ready', () => r()));
    watcher = w;
    if (old) void old.close();
  }

  setPaths(initial);
  return {
    setPaths,
    ready: () => readyP,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await watcher?.close();
      watcher = null;
    },
  };
}
