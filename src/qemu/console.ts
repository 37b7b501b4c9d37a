/**
 * Attach a terminal to a VM's serial console: QEMU serves it on a unix socket (chardev
 * `server=on,wait=off`, also logged to console.log), so attaching works at any time, during boot
 * too. Bytes flow both ways unchanged; the detach key (Ctrl-], 0x1d, as telnet and virsh
 * console) ends the session without sending it to the guest. QEMU accepts one client at a time.
 *
 * Raw mode of the local terminal is the caller's business (the CLI command sets and restores it).
 */
import { connect, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { BackendError } from '../../schemas/errors.js';
import type { ConsoleEnd } from '../../schemas/ports.js';

export const DETACH_BYTE = 0x1d;

export interface AttachConsoleOptions {
  socketPath: string;
  input: Readable;
  output: Writable;
  signal?: AbortSignal;
  /** byte that detaches (default Ctrl-], 0x1d) */
  detachByte?: number;
  /** called once connected, before any console output is copied */
  onAttached?: () => void;
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const onError = (err: NodeJS.ErrnoException): void => {
      const hint =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? 'is the VM running? (tend ps)'
          : err.code === 'EACCES'
            ? 'permission denied on the socket'
            : err.message;
      reject(new BackendError('ConsoleUnavailable', `cannot attach to the serial console at ${path}: ${hint}`, { cause: err }));
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

export interface ConsoleSessionOptions {
  input: Readable;
  signal?: AbortSignal | undefined;
  /** byte that detaches (default Ctrl-], 0x1d); never sent */
  detachByte?: number | undefined;
  /** send the user's bytes to the console */
  send: (b: Buffer) => void;
  /** wire the console's side: call `end` with 'closed' when it closes, or with an error */
  connect: (end: (e: ConsoleEnd | Error) => void) => void;
  /** release the console's side; runs once, however the session ended */
  cleanup: () => void;
}

/**
 * One console session, whatever carries it (a local socket, virsh console over SSH): the user's
 * input goes to the console until the detach byte or the input's end ('detached'), the console
 * closing ('closed'), an error, or the abort signal.
 */
export function consoleSession(o: ConsoleSessionOptions): Promise<ConsoleEnd> {
  const detach = o.detachByte ?? DETACH_BYTE;
  return new Promise<ConsoleEnd>((resolve, reject) => {
    let settled = false;
    const finish = (end: ConsoleEnd | Error): void => {
      if (settled) return;
      settled = true;
      o.input.off('data', onInput);
      o.input.off('end', onInputEnd);
      o.signal?.removeEventListener('abort', onAbort);
      o.cleanup();
      if (end instanceof Error) reject(end);
      else resolve(end);
    };
    const onInput = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const i = b.indexOf(detach);
      if (i < 0) {
        o.send(b);
        return;
      }
      if (i > 0) o.send(b.subarray(0, i));
      finish('detached');
    };
    const onInputEnd = (): void => finish('detached');
    const onAbort = (): void => finish(o.signal?.reason instanceof Error ? o.signal.reason : new Error('aborted'));
    o.connect(finish);
    o.input.on('data', onInput);
    o.input.on('end', onInputEnd);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    o.input.resume();
  });
}

/** Connects and shuttles bytes until detach, close or abort. */
export async function attachConsole(o: AttachConsoleOptions): Promise<ConsoleEnd> {
  o.signal?.throwIfAborted();
  const sock = await open(o.socketPath);
  o.onAttached?.();
  return consoleSession({
    input: o.input,
    signal: o.signal,
    detachByte: o.detachByte,
    send: (b) => sock.write(b),
    connect: (end) => {
      sock.pipe(o.output, { end: false });
      sock.on('error', (err) => end(new BackendError('ConsoleLost', `serial console connection lost: ${err.message}`, { cause: err })));
      sock.on('close', () => end('closed'));
    },
    cleanup: () => {
      sock.unpipe(o.output);
      sock.destroy();
    },
  });
}
