import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, type QmpEvent } from '../../src/qemu/qmp.js';
import { BackendError } from '../../schemas/errors.js';

/** A scripted QMP server: greets (unless silent) and answers with `reply(cmd)`. */
async function server(
  t: { after: (fn: () => Promise<void>) => void },
  reply: (msg: { execute: string; id?: string }, sock: Socket) => void,
  greet = true,
): Promise<{ path: string; srv: Server; socks: Socket[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'tend-qmp-'));
  const path = join(dir, 'q.sock');
  const socks: Socket[] = [];
  const srv = createServer((sock) => {
    socks.push(sock);
    sock.on('error', () => undefined);
    if (greet) sock.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        reply(JSON.parse(line) as { execute: string; id?: string }, sock);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(path, r));
  t.after(async () => {
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  return { path, srv, socks };
}

const send = (sock: Socket, o: unknown): void => void sock.write(JSON.stringify(o) + '\n');

test('handshake, commands matched by id (answered out of order), events to listeners', async (t) => {
  let held: { id?: string; sock: Socket } | null = null;
  const { path, socks } = await server(t, (msg, sock) => {
    if (msg.execute === 'qmp_capabilities') return send(sock, { return: {}, id: msg.id });
    if (msg.execute === 'slow') {
      held = { id: msg.id, sock };
      return;
    }
    if (msg.execute === 'query-status') {
      send(sock, { return: { status: 'running', running: true }, id: msg.id });
      if (held) send(held.sock, { return: 'late', id: held.id });
    }
    if (msg.execute === 'bad') send(sock, { error: { class: 'CommandNotFound', desc: 'no such command' }, id: msg.id });
  });
  const c = await QmpClient.connect(path);
  const events: QmpEvent[] = [];
  c.onEvent((e) => events.push(e));
  const slow = c.execute('slow');
  assert.deepEqual(await c.queryStatus(), { status: 'running', running: true });
  assert.equal(await slow, 'late');
  await assert.rejects(
    c.execute('bad'),
    (e: unknown) => e instanceof BackendError && e.reason === 'QmpCommandFailed' && /no such command/.test(e.message),
  );
  send(socks[0], { event: 'STOP', timestamp: { seconds: 1, microseconds: 0 } });
  send(socks[0], { event: 'SHUTDOWN', data: { guest: true } });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    events.map((e) => e.event),
    ['STOP', 'SHUTDOWN'],
  );
  c.close();
});

test('a closed socket rejects pending commands and fires onClose', async (t) => {
  const { path, socks } = await server(t, (msg, sock) => {
    if (msg.execute === 'qmp_capabilities') send(sock, { return: {}, id: msg.id });
  });
  const c = await QmpClient.connect(path);
  const closed = new Promise<Error | null>((r) => c.onClose(r));
  const pending = c.execute('never-answered');
  socks[0].destroy();
  await assert.rejects(pending, (e: unknown) => e instanceof BackendError && e.reason === 'QmpClosed');
  await closed; // fired (with the reset error, or null on a clean end)
  assert.equal(c.isClosed, true);
  await assert.rejects(c.execute('query-status'), /closed/);
});

test('no greeting: connect times out; no socket: connect fails; a silent command times out', async (t) => {
  const silent = await server(t, () => undefined, false);
  await assert.rejects(
    QmpClient.connect(silent.path, { timeoutMs: 200 }),
    (e: unknown) => e instanceof BackendError && e.reason === 'QmpTimeout',
  );
  await assert.rejects(
    QmpClient.connect(join(tmpdir(), 'tend-no-such.sock'), { timeoutMs: 200 }),
    (e: unknown) => e instanceof BackendError && e.reason === 'QmpUnavailable',
  );
  const mute = await server(t, (msg, sock) => {
    if (msg.execute === 'qmp_capabilities') send(sock, { return: {}, id: msg.id });
  });
  const c = await QmpClient.connect(mute.path);
  await assert.rejects(
    c.execute('query-status', undefined, { timeoutMs: 100 }),
    (e: unknown) => e instanceof BackendError && e.reason === 'QmpTimeout',
  );
  c.close();
});
