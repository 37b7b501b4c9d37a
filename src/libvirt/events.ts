/**
 * libvirt's own lifecycle events, for `tend watch`: one `virsh event --loop --event lifecycle`
 * child per connection, shared by every watched domain, started on the first watch and ended
 * with the last. A line per event: `event 'lifecycle' for domain 'NAME': Stopped Destroyed`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { VmExit } from '../../schemas/ports.js';

export interface LifecycleEvent {
  domain: string;
  /** Started, Suspended, Resumed, Stopped, Shutdown, PMSuspended, Crashed, Defined, Undefined */
  event: string;
  /** e.g. Destroyed, Shutdown, Crashed, Failed, Booted */
  detail: string;
}

export function parseEventLine(line: string): LifecycleEvent | null {
  const m = /^event 'lifecycle' for domain '?(.+?)'?: (\S+)(?: (\S+))?\s*$/.exec(line.trim());
  return m ? { domain: m[1], event: m[2], detail: m[3] ?? '' } : null;
}

/**
 * The domain's QEMU ended, and how: a guest poweroff or an orderly save/shutdown is clean; a
 * `virsh destroy` (tend's own stop never needs one unless the guest ignored ACPI), a crash or a
 * failure to run is a failure. Null: the event is not an end of the process.
 */
export function exitKindOf(e: LifecycleEvent): VmExit['kind'] | null {
  if (e.event === 'Crashed') return 'failure';
  if (e.event !== 'Stopped') return null;
  return e.detail === 'Shutdown' || e.detail === 'Saved' || e.detail === 'Migrated' ? 'clean' : 'failure';
}

/**
 * The same for a domain's state as `virsh domstate --reason` prints it ("shut off (saved)",
 * "crashed (panicked)", "running (booted)"): how its process ended, or null while it runs. A
 * domain that is gone (null) ended too: a failure, as nothing says otherwise.
 */
export function exitKindOfState(state: string | null): VmExit['kind'] | null {
  if (state === null) return 'failure';
  const m = /^(shut off|crashed)(?: \((\S+)\))?/.exec(state.trim());
  if (!m) return null;
  const detail = (m[2] ?? '').replace(/^./, (c) => c.toUpperCase());
  return exitKindOf({ domain: '', event: m[1] === 'crashed' ? 'Crashed' : 'Stopped', detail });
}

export interface EventStream {
  /** listen for one domain's events; returns an unsubscribe function */
  on(domain: string, cb: (e: LifecycleEvent) => void): () => void;
  close(): void;
}

export function createEventStream(o: {
  uri: string;
  env?: NodeJS.ProcessEnv;
  binary?: string;
  onError?: (err: Error) => void;
}): EventStream {
  const listeners = new Map<string, Set<(e: LifecycleEvent) => void>>();
  let child: ChildProcess | null = null;
  let closed = false;

  const ensure = (): void => {
    if (child || closed) return;
    const c = spawn(o.binary ?? 'virsh', ['-q', '-c', o.uri, 'event', '--loop', '--event', 'lifecycle'], {
      env: { ...(o.env ?? process.env), LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    let stderr = '';
    c.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    createInterface({ input: c.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = parseEventLine(line);
      if (!e) return;
      for (const cb of listeners.get(e.domain) ?? []) cb(e);
    });
    c.on('error', (err) => o.onError?.(err));
    c.on('exit', (code) => {
      if (child === c) child = null;
      if (!closed && listeners.size > 0) {
        o.onError?.(new Error(`virsh event on ${o.uri} ended (exit ${code})${stderr ? `: ${stderr.trim()}` : ''}`));
        // keep listening: the daemon may have restarted
        setTimeout(ensure, 1000).unref();
      }
    });
  };

  const stopChild = (): void => {
    const c = child;
    child = null;
    if (c && c.exitCode === null) c.kill('SIGTERM');
  };

  return {
    on(domain, cb) {
      let set = listeners.get(domain);
      if (!set) listeners.set(domain, (set = new Set()));
      set.add(cb);
      ensure();
      return () => {
        set.delete(cb);
        if (set.size === 0) listeners.delete(domain);
        if (listeners.size === 0) stopChild();
      };
    },
    close() {
      closed = true;
      listeners.clear();
      stopChild();
    },
  };
}
