/**
 * The libvirt backend's exit-watch: libvirt's lifecycle events, with a pid check as the fallback
 * for local domains. One event stream and one pid watcher per backend, ended by close().
 *
 * pid 0 (a domain libvirt lists as running while its QEMU is already gone, in the middle of a
 * `virsh destroy`): watched by name, by its events and, since its end may have come before the
 * event stream connected, by its state (`virsh domstate --reason`) every STATE_POLL_MS.
 */
import type { Project } from '../../schemas/model.js';
import type { VmExit } from '../../schemas/ports.js';
import { createPidWatcher } from '../watch/crashes.js';
import { domainName } from './names.js';
import { createEventStream, exitKindOf, exitKindOfState, type EventStream } from './events.js';
import type { LibvirtContext } from './context.js';

export interface LibvirtExitWatch {
  watchExit(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void;
  close(): void;
}

const STATE_POLL_MS = 500;

export function createLibvirtExitWatch(ctx: LibvirtContext, o: { virshBinary?: string; exitPollMs?: number }): LibvirtExitWatch {
  const { uri, env, log, local, virsh } = ctx;
  let events: EventStream | null = null;
  const pidWatcher = createPidWatcher(o.exitPollMs ? { pollMs: o.exitPollMs } : {});
  function watchExit(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void {
    const dom = domainName(project, name);
    events ??= createEventStream({
      uri,
      env,
      ...(o.virshBinary ? { binary: o.virshBinary } : {}),
      onError: (err) => log?.warn({ err, uri }, 'libvirt event stream'),
    });
    let finished = false;
    let fallback: NodeJS.Timeout | null = null;
    let poll: NodeJS.Timeout | null = null;
    const stop = (): void => {
      finished = true;
      offEvents();
      offPid();
      if (fallback) clearTimeout(fallback);
      if (poll) clearTimeout(poll);
    };
    const fire = (kind: VmExit['kind']): void => {
      if (finished) return;
      stop();
      onExit({ vm: name, pid, kind });
    };
    const offEvents = events.on(dom, (e) => {
      const kind = exitKindOf(e);
      if (kind) fire(kind);
    });
    // the process is gone but no event came (stream down): a failure, after a moment for the event
    const offPid =
      local && pid > 0
        ? pidWatcher.watch(pid, () => {
            fallback = setTimeout(() => fire('failure'), 500);
            fallback.unref();
          })
        : () => undefined;
    if (pid <= 0) {
      const look = (): void => {
        void virsh.tryRun(['domstate', dom, '--reason'], { timeoutMs: 10_000 }).then(
          (state) => {
            if (finished) return;
            // shut off, crashed, or no domain (undefined meanwhile): its process has ended
            const kind = exitKindOfState(state);
            if (kind) fire(kind);
            else poll = setTimeout(look, STATE_POLL_MS).unref();
          },
          () => {
            if (!finished) poll = setTimeout(look, STATE_POLL_MS).unref();
          },
        );
      };
      look();
    }
    return stop;
  }

  return {
    watchExit,
    close() {
      events?.close();
      events = null;
      pidWatcher.close();
    },
  };
}
