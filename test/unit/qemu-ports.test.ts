import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { allocatePorts, tryBind } from '../../src/qemu/ports.js';
import { BackendError } from '../../schemas/errors.js';
import type { PortSpec } from '../../schemas/model.js';

function occupy(port = 0): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}
const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

const auto = (guestPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortSpec => ({
  hostAddress: '127.0.0.1',
  hostPort: null,
  guestPort,
  protocol,
});

test('ssh and unspecified host ports get distinct free ports, recorded as guest port/proto -> addr:port', async () => {
  const a = await allocatePorts('web', [auto(80), auto(443), auto(53, 'udp')], undefined, { needSsh: true });
  const hostPorts = [a.sshPort, ...a.forwards.map((f) => f.hostPort)];
  assert.equal(new Set(hostPorts.slice(0, 3)).size, 3, 'tcp ports are distinct');
  for (const p of hostPorts) assert.ok(p > 0);
  assert.equal(a.record.ssh, `127.0.0.1:${a.sshPort}`);
  assert.equal(a.record['80/tcp'], `127.0.0.1:${a.forwards[0].hostPort}`);
  assert.equal(a.record['53/udp'], `127.0.0.1:${a.forwards[2].hostPort}`);
  for (const p of hostPorts.slice(0, 3)) assert.notEqual(await tryBind('127.0.0.1', p), null, 'allocated ports are not left bound');
});

test('persisted ports are kept across restarts while they are free', async () => {
  const first = await allocatePorts('web', [auto(80)], undefined, { needSsh: true });
  const again = await allocatePorts('web', [auto(80)], first.record, { needSsh: true });
  assert.deepEqual(again.record, first.record);
});

test('a persisted port someone else took meanwhile is re-allocated', async () => {
  const first = await allocatePorts('web', [auto(80)], undefined, { needSsh: true });
  const { server } = await occupy(first.forwards[0].hostPort);
  try {
    const again = await allocatePorts('web', [auto(80)], first.record, { needSsh: true });
    assert.notEqual(again.forwards[0].hostPort, first.forwards[0].hostPort);
    assert.equal(again.sshPort, first.sshPort);
  } finally {
    await close(server);
  }
});

test('a fixed host port that is taken is an error naming the port', async () => {
  const { server, port } = await occupy();
  try {
    await assert.rejects(
      allocatePorts('web', [{ hostAddress: '127.0.0.1', hostPort: port, guestPort: 80, protocol: 'tcp' }], undefined, { needSsh: true }),
      (e: unknown) => e instanceof BackendError && e.reason === 'HostPortInUse' && e.message.includes(`127.0.0.1:${port}`),
    );
  } finally {
    await close(server);
  }
});

test('a fixed free host port is used as declared; no SSH forward when not needed', async () => {
  const { server, port } = await occupy();
  await close(server);
  const a = await allocatePorts('web', [{ hostAddress: '127.0.0.1', hostPort: port, guestPort: 80, protocol: 'tcp' }], undefined, {
    needSsh: false,
  });
  assert.equal(a.forwards[0].hostPort, port);
  assert.equal(a.record.ssh, undefined);
  assert.deepEqual(a.record, { '80/tcp': `127.0.0.1:${port}` });
});
