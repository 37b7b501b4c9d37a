/**
 * A small QMP client over a unix socket: reads the greeting, negotiates capabilities, runs
 * commands (matched by id) and hands asynchronous events (SHUTDOWN, STOP, RESUME, ...) to
 * listeners. Every socket error is handled: a dead socket rejects pending commands and fires
 * `onClose`, never an unhandled 'error' event.
 */
import { createConnection, type Socket } from 'node:net';
import { BackendError } from '../../schemas/errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpStatus {
  status: string;
  running: boolean;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
  command: string;
}

export class QmpClient {
  private buf = '';
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private eventListeners: ((e: QmpEvent) => void)[] = [];
  private closeListeners: ((err: Error | null) => void)[] = [];
  private closed = false;
  private greeting: ((v: unknown) => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {}

  /** Connect, wait for the greeting and run `qmp_capabilities`. Rejects after `timeoutMs`. */
  static async connect(path: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 2000;
    const socket = createConnection({ path });
    const client = new QmpClient(socket, path);
    client.attach();
    const greeted = new Promise<unknown>((resolve, reject) => {
      client.greeting = resolve;
      client.onClose((err) => reject(err ?? new Error('QMP socket closed before the greeting')));
    });
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendError('QmpTimeout', `QMP at ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    });
    const onAbort = (): void => client.close();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([greeted, timeout]);
      await Promise.race([client.execute('qmp_capabilities', undefined, { timeoutMs }), timeout]);
      return client;
    } catch (err) {
      client.close();
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw err instanceof BackendError
        ? err
        : new BackendError('QmpUnavailable', `QMP at ${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private attach(): void {
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line) this.handleLine(line);
      }
    });
    this.socket.on('error', (err) => this.finish(err));
    this.socket.on('close', () => this.finish(null));
  }

  private handleLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in msg) {
      this.greeting?.(msg.QMP);
      this.greeting = null;
      return;
    }
    if (typeof msg.event === 'string') {
      const ev = msg as unknown as QmpEvent;
      for (const l of this.eventListeners) l(ev);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p || !id) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new BackendError('QmpCommandFailed', `QMP ${p.command}: ${e.class ?? 'Error'}: ${e.desc ?? 'failed'}`));
    } else {
      p.resolve(msg.return);
    }
  }

  private finish(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    const why = err ?? new Error('QMP connection closed');
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new BackendError('QmpClosed', `QMP ${p.command}: ${why.message}`, { cause: err ?? undefined }));
    }
    this.pending.clear();
    for (const l of this.closeListeners) l(err);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Run a QMP command; resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new BackendError('QmpClosed', `QMP ${command}: connection is closed`));
    const id = `tend-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            this.pending.delete(id);
            reject(new BackendError('QmpTimeout', `QMP ${command}: no answer within ${opts.timeoutMs} ms`));
          }, opts.timeoutMs)
        : null;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, command });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  async queryStatus(timeoutMs = 1000): Promise<QmpStatus> {
    return this.execute<QmpStatus>('query-status', undefined, { timeoutMs });
  }

  /** Listen for asynchronous events; returns an unsubscribe function. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.eventListeners.push(listener);
    return () => {
      this.eventListeners = this.eventListeners.filter((l) => l !== listener);
    };
  }

  /** Called once when the connection ends (err null on a clean close, e.g. QEMU exited). */
  onClose(listener: (err: Error | null) => void): () => void {
    if (this.closed) {
      queueMicrotask(() => listener(null));
      return () => undefined;
    }
    this.closeListeners.push(listener);
    return () => {
      this.closeListeners = this.closeListeners.filter((l) => l !== listener);
    };
  }

  close(): void {
    this.socket.destroy();
    this.finish(null);
  }
}

/** Connect, run one command, close. */
export async function qmpOnce<T = unknown>(path: string, command: string, args?: Record<string, unknown>, timeoutMs = 1000): Promise<T> {
  const c = await QmpClient.connect(path, { timeoutMs });
  try {
    return await c.execute<T>(command, args, { timeoutMs });
  } finally {
    c.close();
  }
}
