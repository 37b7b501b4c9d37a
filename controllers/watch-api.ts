/** What `tend watch`'s loop (watch-loop.ts) needs and offers. */
import type { Project } from '../schemas/model.js';
import type { TendEvent, VmExit } from '../schemas/ports.js';
import type { ControllerDeps, ConvergeResult } from './reconciler.js';
import type { BackoffOptions } from './restart-policy.js';
import type { WatchLoad } from './watch-desired.js';

export interface WatchDeps extends ControllerDeps {
  /** read the project files again */
  load(): WatchLoad | Promise<WatchLoad>;
  /** run `fn` holding the project lock; the lock is released before this settles */
  withLock<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T>;
  /** (re)point the file watcher at these paths (called after every valid load) */
  watchFiles?(paths: string[]): void;
}

export interface WatchOptions {
  /** quiet time after the last file event before a pass (ms); default 50 */
  debounceMs?: number;
  /** periodic full converge (ms); default 30 s; 0 disables it */
  resyncMs?: number;
  prune: boolean;
  recreate: boolean;
  provision: boolean;
  backoff?: BackoffOptions;
  onEvent?: (e: TendEvent) => void;
  /** after every pass that ran converge (tests, bench) */
  onPass?: (p: PassReport) => void;
}

export interface PassReport {
  /** why the pass ran */
  triggers: ('files' | 'reload' | 'resync' | 'exit' | 'backoff' | 'initial')[];
  /** VMs given to converge; undefined = all (orphans included) */
  names: string[] | undefined;
  result: ConvergeResult | null;
  error?: Error;
}

export interface WatchController {
  /** project files (or files they reference) changed: absolute paths */
  filesChanged(paths: readonly string[]): void;
  /** read the project files again (SIGHUP) */
  reload(): void;
  /** a VM's process ended */
  vmExited(e: VmExit): void;
  /** run a full pass now */
  resync(): void;
  /** a VM may have been started outside the loop: watch the processes of the running VMs */
  rearm(): void;
  /** the last valid project */
  readonly project: Project;
  /** VMs the restart policy leaves down (or in backoff), with why */
  readonly held: ReadonlyMap<string, string>;
  /** settles when the loop has ended (after `signal` aborted) and nothing is in flight */
  readonly done: Promise<void>;
}
