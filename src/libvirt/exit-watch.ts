/**
 * The libvirt backend's exit-watch: libvirt's lifecycle events, with a pid check as the fallback
 * for local domains. One event stream and one pid watcher per backend, ended by close().
 */
import type { Project } from '../../schemas/model.js';
import type { VmExit } from '../../schemas/ports.js';
import { createPidWatcher } from '../watch/crashes.js';
import { domainName } from './names.js';
import { createEventStream, exitKindOf, type EventStream } from './events.js';
import type { LibvirtContext } from './context.js';

export interface LibvirtExitWatch {
  watchExit(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void;
  close(): void;
}

export function createLibvirtExitWatch(ctx: LibvirtContext, o: { virshBinary?: string; exitPollMs?: number }): LibvirtExitWatch {
  const { uri, env, log, local } = ctx;
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
    const stop = (): void => {
      finished = true;
      offEvents();
      offPid();
      if (fallback) clearTimeout(fallback);
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
