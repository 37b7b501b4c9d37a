/**
 * A long-lived QMP connection for event-driven crash detection (`tend watch`). It uses the VM's
 * second QMP monitor (FILES.qmpEvents), so it never blocks the short command connections that
 * observe/stop/suspend open on the main one: QEMU serves one client per monitor.
 */
import { socketPath } from '../state/paths.js';
import { QmpClient, type QmpEvent } from './qmp.js';

export interface VmEventWatch {
  client: QmpClient;
  close(): void;
}

/**
 * Connect to a running VM's event monitor. `onEvent` gets SHUTDOWN, STOP, RESUME, POWERDOWN, ...;
 * `onClose` fires once when the connection ends, which is how a QEMU exit (crash or not) shows.
 */
export async function watchVmEvents(
  projDir: string,
  vm: string,
  opts: {
    onEvent: (e: QmpEvent) => void;
    onClose: (err: Error | null) => void;
    env?: NodeJS.ProcessEnv;
    signal?: AbortSignal;
    timeoutMs?: number;
  },
): Promise<VmEventWatch> {
  const client = await QmpClient.connect(socketPath(projDir, vm, 'qmpEvents', opts.env ?? process.env), {
    timeoutMs: opts.timeoutMs ?? 2000,
    signal: opts.signal,
  });
  client.onEvent(opts.onEvent);
  client.onClose(opts.onClose);
  const onAbort = (): void => client.close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    client,
    close: () => {
      opts.signal?.removeEventListener('abort', onAbort);
      client.close();
    },
  };
}
