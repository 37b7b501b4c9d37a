/**
 * The work queue under `tend watch` (client-go's workqueue, reduced to what one controller
 * needs), all on the injected Clock:
 *
 *   add(key)             ready now
 *   addAfter(key, ms)    ready when the due timer fires (the earlier of two timers wins)
 *   addDebounced(key)    ready after `debounceMs` without another call, but never later than
 *                        `maxDebounceMs` after the first call of the burst
 *   forget(key)          not ready, no timer
 *   take()               waits for at least one ready key and hands over all of them at once
 *                        (a set: a key added twice before a take is reconciled once)
 *
 * A key is ready or waiting on one timer, never both: `add` cancels the key's timer. The queue
 * ends when `signal` aborts (take() then resolves null) and its timers end with it.
 */
import type { Clock } from '../schemas/ports.js';

export interface WorkQueueOptions {
  /** quiet time an addDebounced key waits for (ms) */
  debounceMs: number;
  /** a burst of addDebounced calls delays the key at most this long after its first call (ms) */
  maxDebounceMs: number;
}

interface Timer {
  at: number;
  stop: AbortController;
  /** first call of a debounce burst (debounced keys only) */
  burstStart?: number;
}

export class WorkQueue<K> {
  private readonly ready = new Set<K>();
  private readonly timers = new Map<K, Timer>();
  private wake: (() => void) | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly signal: AbortSignal,
    private readonly opts: WorkQueueOptions,
  ) {
    signal.addEventListener('abort', () => this.poke(), { once: true });
  }

  add(key: K): void {
    this.cancelTimer(key);
    this.ready.add(key);
    this.poke();
  }

  addAfter(key: K, ms: number): void {
    if (ms <= 0) return this.add(key);
    if (this.ready.has(key)) return;
    const at = this.clock.now() + ms;
    const t = this.timers.get(key);
    if (t && t.at <= at) return;
    this.arm(key, at);
  }

  addDebounced(key: K): void {
    if (this.ready.has(key)) return;
    const now = this.clock.now();
    const burstStart = this.timers.get(key)?.burstStart ?? now;
    this.arm(key, Math.min(now + this.opts.debounceMs, burstStart + this.opts.maxDebounceMs), burstStart);
  }

  forget(key: K): void {
    this.cancelTimer(key);
    this.ready.delete(key);
  }

  /** Is the key ready, or waiting on a timer? */
  has(key: K): boolean {
    return this.ready.has(key) || this.timers.has(key);
  }

  /** When the key's timer fires (ms since epoch), undefined without one. */
  dueAt(key: K): number | undefined {
    return this.timers.get(key)?.at;
  }

  /** Every ready key (at least one), or null once the queue has ended. */
  async take(): Promise<Set<K> | null> {
    while (this.ready.size === 0) {
      if (this.signal.aborted) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.signal.aborted) return null;
    const batch = new Set(this.ready);
    this.ready.clear();
    return batch;
  }

  private arm(key: K, at: number, burstStart?: number): void {
    this.cancelTimer(key);
    const stop = new AbortController();
    const t: Timer = { at, stop, ...(burstStart !== undefined ? { burstStart } : {}) };
    this.timers.set(key, t);
    this.clock.sleep(Math.max(0, at - this.clock.now()), AbortSignal.any([stop.signal, this.signal])).then(
      () => {
        if (this.timers.get(key) !== t) return;
        this.timers.delete(key);
        this.ready.add(key);
        this.poke();
      },
      () => undefined, // cancelled, or the queue ended
    );
  }

  private cancelTimer(key: K): void {
    const t = this.timers.get(key);
    if (!t) return;
    this.timers.delete(key);
    t.stop.abort();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
