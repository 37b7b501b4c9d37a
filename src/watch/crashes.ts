/**
 * Noticing that a process ended, for crash detection in `tend watch`. QEMU runs detached (it
 * survives tend), so it is not our child: there is no exit event to wait for. One shared timer
 * checks every watched pid with signal 0 (a syscall, no /proc read) every `pollMs` (default
 * 250 ms), so an exit is noticed well within a second and 20 idle VMs cost next to nothing.
 *
 * This is the fallback: QMP events come first, from each VM's second monitor (src/qemu/watch.ts).
 */
import { pidAlive } from '../pid.js';

export interface PidWatchOptions {
  /** how often to check (ms); default 250 */
  pollMs?: number;
  /** is the process alive? default: kill(pid, 0) */
  isAlive?: (pid: number) => boolean;
}

export interface PidWatcher {
  /** call `onExit` once when `pid` is gone; returns a function that stops watching */
  watch(pid: number, onExit: () => void): () => void;
  /** pids being watched */
  readonly size: number;
  close(): void;
}

export function createPidWatcher(o: PidWatchOptions = {}): PidWatcher {
  const pollMs = o.pollMs ?? 250;
  const isAlive = o.isAlive ?? pidAlive;
  const watched = new Map<symbol, { pid: number; onExit: () => void }>();
  let timer: NodeJS.Timeout | null = null;

  const check = (): void => {
    for (const [key, w] of [...watched]) {
      if (isAlive(w.pid)) continue;
      watched.delete(key);
      w.onExit();
    }
    if (watched.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };

  return {
    watch(pid, onExit) {
      const key = Symbol(String(pid));
      watched.set(key, { pid, onExit });
      if (!timer) {
        timer = setInterval(check, pollMs);
        timer.unref();
      }
      return () => {
        watched.delete(key);
      };
    },
    get size() {
      return watched.size;
    },
    close() {
      watched.clear();
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
