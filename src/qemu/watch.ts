/**
 * The QEMU backend's exit-watch role: notice within a second that a VM's QEMU ended, and
 * whether it failed or exited cleanly. Two sources, whichever speaks first:
 *   - the VM's event monitor (src/qemu/events.ts, the second QMP socket): the connection closes
 *     the moment QEMU exits; a SHUTDOWN event before that means an orderly exit (guest poweroff,
 *     `quit`, SIGTERM), except reason "guest-panic"
 *   - a pid check every 250 ms (src/watch/crashes.ts), for QEMUs without that monitor (started by
 *     an older tend) or when the connection cannot be made
 * Without a SHUTDOWN event the pidfile tells: QEMU removes it when it exits normally; after
 * SIGKILL or a crash it is left behind, still naming the dead pid.
 */
import { readFileSync } from 'node:fs';
import type { ExitWatch, VmExit } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import { projectDir, vmFile } from '../state/paths.js';
import { pidAlive } from '../pid.js';
import { createPidWatcher, type PidWatcher, type PidWatchOptions } from '../watch/crashes.js';
import { watchVmEvents, type VmEventWatch } from './events.js';

export interface QemuExitWatchOptions extends PidWatchOptions {
  stateRoot: string;
  env?: NodeJS.ProcessEnv;
  /** false: pid checks only (default true: also the event monitor) */
  events?: boolean;
}

/** How a QEMU whose pidfile is `pidfile` ended, judged by the pidfile alone. */
export function exitKind(pidfile: string, pid: number): VmExit['kind'] {
  try {
    return Number(readFileSync(pidfile, 'utf8').trim()) === pid ? 'failure' : 'clean';
  } catch {
    return 'clean';
  }
}

/**
 * ExitWatch.watchExit over QEMU's event monitor and pid checks. The shared pid timer is made at
 * the first watch; it is unref'd and stops itself when nothing is watched.
 */
export function qemuExitWatch(o: QemuExitWatchOptions): ExitWatch['watchExit'] {
  let watcher: PidWatcher | null = null;
  const isAlive = o.isAlive ?? pidAlive;
  return (project: Project, name: string, pid: number, onExit: (e: VmExit) => void): (() => void) => {
    // a QEMU VM is observed running only with its pid: nothing to watch without one
    if (pid <= 0) return () => undefined;
    watcher ??= createPidWatcher(o);
    const projDir = projectDir(o.stateRoot, project.name, project.dir);
    const pidfile = vmFile(projDir, name, 'pid');
    let finished = false;
    let shutdown: string | null = null;
    let events: VmEventWatch | null = null;
    const stop = (): void => {
      finished = true;
      offPid();
      events?.close();
      events = null;
    };
    const fire = (): void => {
      if (finished) return;
      const kind: VmExit['kind'] = shutdown !== null ? (shutdown === 'guest-panic' ? 'failure' : 'clean') : exitKind(pidfile, pid);
      stop();
      onExit({ vm: name, pid, kind });
    };
    const offPid = watcher.watch(pid, fire);
    if (o.events !== false) {
      watchVmEvents(projDir, name, {
        ...(o.env ? { env: o.env } : {}),
        timeoutMs: 1000,
        onEvent: (e) => {
          if (e.event === 'SHUTDOWN') shutdown = typeof e.data?.reason === 'string' ? e.data.reason : 'shutdown';
        },
        // the connection ends when QEMU exits; if the process is still there it was something else
        onClose: () => {
          if (!isAlive(pid)) fire();
        },
      }).then(
        (w) => {
          if (finished) w.close();
          else events = w;
        },
        () => undefined, // no event monitor: the pid check alone
      );
    }
    return stop;
  };
}
