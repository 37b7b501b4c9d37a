/**
 * The serial console of a domain on a remote libvirt host. Its console is a pty on that host, and
 * `virsh console` needs a terminal: tend opens its SSH connection to the host (the jump, as for
 * guest access), asks for a pty there and runs the host's own `virsh -c qemu:///system console
 * DOM --force` in it. Bytes flow both ways unchanged; virsh's two-line greeting is not shown, and
 * the detach key (Ctrl-]) is handled here as for a local console (src/qemu/console.ts), so
 * virsh never sees it.
 */
import type { ClientChannel } from 'ssh2';
import { BackendError } from '../../schemas/errors.js';
import type { ConsoleEnd, ConsoleIo } from '../../schemas/ports.js';
import { consoleSession } from '../qemu/console.js';
import { parseRemoteUri } from './remote-uri.js';

/** virsh console's greeting ends with this line; what follows is the guest's. */
const GREETING_END = /Escape character is[^\n]*\n/;

export async function attachRemoteConsole(
  uri: string,
  dom: string,
  io: ConsoleIo,
  o: { env: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<ConsoleEnd> {
  o.signal?.throwIfAborted();
  const r = parseRemoteUri(uri);
  // src/ssh loads ssh2: imported when a console is attached
  const { connectJump, jumpOf } = await import('../ssh/jump.js');
  const { shellQuote } = await import('../ssh/shell-quote.js');
  const jump = jumpOf(uri, o.env);
  if (!r || !jump) throw new BackendError('ConsoleUnavailable', `${dom}: ${uri} is not a remote host`);
  const client = await connectJump(jump, { env: o.env, ...(o.signal ? { signal: o.signal } : {}) });
  // the same daemon, as the host itself names it (qemu+ssh://h/system -> qemu:///system)
  const cmd = `virsh -c ${shellQuote(`qemu://${r.path}`)} console ${shellQuote(dom)} --force`;
  let ch: ClientChannel;
  try {
    ch = await new Promise<ClientChannel>((resolve, reject) =>
      client.exec(cmd, { pty: { term: process.env.TERM ?? 'vt100' } }, (err, s) => (err ? reject(err) : resolve(s))),
    );
  } catch (err) {
    client.end();
    throw new BackendError('ConsoleUnavailable', `${dom}: cannot run virsh console on ${jump.label}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let greeted = false;
  let head = '';
  const onOutput = (b: Buffer): void => {
    if (greeted) {
      io.output.write(b);
      return;
    }
    head += b.toString('latin1');
    const m = GREETING_END.exec(head);
    if (!m) return;
    greeted = true;
    io.onAttached?.();
    const rest = head.slice(m.index + m[0].length);
    if (rest) io.output.write(Buffer.from(rest, 'latin1'));
  };
  return consoleSession({
    input: io.input,
    signal: o.signal,
    send: (b) => ch.write(b),
    connect: (end) => {
      ch.on('data', onOutput);
      // virsh ended before its greeting: what it printed is why (no such domain, not running, ...)
      ch.on('close', () =>
        end(
          greeted
            ? 'closed'
            : new BackendError('ConsoleUnavailable', `${dom}: virsh console on ${jump.label}: ${head.trim() || 'ended at once'}`),
        ),
      );
      client.on('error', (err) => end(new BackendError('ConsoleLost', `serial console connection lost: ${err.message}`, { cause: err })));
    },
    cleanup: () => {
      ch.close();
      client.end();
    },
  });
}
