import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import type { Observed, ObservedVm } from '../../schemas/ports.js';
import { addressesOverlap, portConflicts, type HostSocket } from '../../controllers/port-conflicts.js';
import { hostPortsInUse, parseProcNet } from '../../src/net/port-holders.js';
import { checkHostPorts, PortConflictError } from '../../src/cli/port-check.js';

function project(...vms: VmDraft[]): Project {
  return { name: 'p', dir: '/p', files: [], volumes: {}, vms: vms.map(applyDefaults) };
}
const img = { kind: 'catalog', ref: 'debian:12' } as const;
const port = (hostPort: number | null, guestPort: number, hostAddress = '127.0.0.1', protocol: 'tcp' | 'udp' = 'tcp') => ({
  hostPort,
  guestPort,
  hostAddress,
  protocol,
});
const running = (name: string, pid: number, ports: Record<string, string> = {}): ObservedVm => ({
  name,
  exists: true,
  power: 'running',
  pid,
  applied: null,
  diskImage: null,
  accel: 'tcg',
  ports,
  sshPort: null,
  intent: null,
  provisioned: [],
  startedAt: 0,
  corrupt: [],
});
const none: Observed = { vms: {} };

test('a fixed host port held by another process is a conflict naming the pid and command', () => {
  const p = project({ name: 'web', image: img, ports: [port(8080, 80)] });
  const sockets: HostSocket[] = [{ protocol: 'tcp', address: '0.0.0.0', port: 8080, pid: 4242, command: 'nginx: master process' }];
  const c = portConflicts(p, none, sockets);
  assert.equal(c.length, 1);
  assert.equal(c[0].holder?.pid, 4242);
  assert.match(
    c[0].message,
    /web: host port 127\.0\.0\.1:8080\/tcp \(for guest port 80\) is already taken by pid 4242 \(nginx: master process\)/,
  );
});

test('a holder we cannot see is still reported, without a pid', () => {
  const p = project({ name: 'web', image: img, ports: [port(8080, 80)] });
  const c = portConflicts(p, none, [{ protocol: 'tcp', address: '127.0.0.1', port: 8080, pid: null, command: null }]);
  assert.match(c[0].message, /another process .* not visible/);
});

test("the VM's own running QEMU is not a conflict; other protocols, ports and addresses are not either", () => {
  const p = project({ name: 'web', image: img, ports: [port(8080, 80)] });
  const obs: Observed = { vms: { web: running('web', 100, { '80/tcp': '127.0.0.1:8080' }) } };
  assert.deepEqual(portConflicts(p, obs, [{ protocol: 'tcp', address: '127.0.0.1', port: 8080, pid: 100, command: 'qemu' }]), []);
  assert.deepEqual(portConflicts(p, obs, [{ protocol: 'tcp', address: '127.0.0.1', port: 8080, pid: null, command: null }]), []);
  assert.deepEqual(portConflicts(p, none, [{ protocol: 'udp', address: '127.0.0.1', port: 8080, pid: 1, command: 'x' }]), []);
  assert.deepEqual(portConflicts(p, none, [{ protocol: 'tcp', address: '127.0.0.2', port: 8080, pid: 1, command: 'x' }]), []);
  assert.deepEqual(portConflicts(p, none, [{ protocol: 'tcp', address: '127.0.0.1', port: 8081, pid: 1, command: 'x' }]), []);
  // allocated host ports (null) are never conflicts: they are picked free at start
  assert.deepEqual(
    portConflicts(project({ name: 'a', image: img, ports: [port(null, 80)] }), none, [
      { protocol: 'tcp', address: '0.0.0.0', port: 80, pid: 1, command: 'x' },
    ]),
    [],
  );
});

test('two VMs of the project declaring the same host port conflict', () => {
  const p = project({ name: 'a', image: img, ports: [port(8080, 80)] }, { name: 'b', image: img, ports: [port(8080, 81, '0.0.0.0')] });
  const c = portConflicts(p, none, []);
  assert.deepEqual(
    c.map((x) => [x.vm, x.otherVm]),
    [
      ['a', 'b'],
      ['b', 'a'],
    ],
  );
  assert.deepEqual(
    portConflicts(p, none, [], ['a']).map((x) => x.vm),
    ['a'],
    'only the targeted VMs are checked',
  );
});

test('address overlap: wildcards overlap everything of their family, :: overlaps all', () => {
  assert.equal(addressesOverlap('0.0.0.0', '127.0.0.1'), true);
  assert.equal(addressesOverlap('::', '127.0.0.1'), true);
  assert.equal(addressesOverlap('0.0.0.0', '::1'), false);
  assert.equal(addressesOverlap('::ffff:127.0.0.1', '127.0.0.1'), true);
  assert.equal(addressesOverlap('127.0.0.1', '127.0.0.2'), false);
});

test('parseProcNet reads listening TCP and bound UDP sockets, v4 and v6', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0 100 0 0 10 0',
    '   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0 100 0 0 10 0',
  ].join('\n');
  assert.deepEqual(parseProcNet(tcp, 'tcp', 4), [{ protocol: 'tcp', address: '127.0.0.1', port: 8080, inode: 12345 }]);
  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0',
    '   1: 00000000000000000000000001000000:0051 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1 0 100 0 0 10 0',
  ].join('\n');
  assert.deepEqual(
    parseProcNet(tcp6, 'tcp', 6).map((s) => `${s.address}:${s.port}`),
    [':::80', '::1:81'],
  );
  const udp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0 0',
  ].join('\n');
  assert.deepEqual(parseProcNet(udp, 'udp', 4), [{ protocol: 'udp', address: '0.0.0.0', port: 53, inode: 999 }]);
});

function listen(): Promise<{ srv: Server; port: number }> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      resolve({ srv, port: typeof a === 'object' && a ? a.port : 0 });
    });
  });
}

test('hostPortsInUse finds a real listening socket and names this very process as its holder', async () => {
  const { srv, port: p } = await listen();
  try {
    const uses = await hostPortsInUse();
    const mine = uses.find((u) => u.protocol === 'tcp' && u.port === p);
    assert.ok(mine, `port ${p} not found among ${uses.length} sockets`);
    assert.equal(mine.address, '127.0.0.1');
    assert.equal(mine.pid, process.pid);
    assert.match(mine.command ?? '', /node/);
    const proj = project({ name: 'web', image: img, ports: [port(p, 80)] });
    await assert.rejects(checkHostPorts(proj, none), (e: unknown) => {
      assert.ok(e instanceof PortConflictError);
      assert.equal(e.reason, 'HostPortInUse');
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${p}/tcp .* taken by pid ${process.pid} \\(.*node`));
      return true;
    });
  } finally {
    srv.close();
  }
});

test('hostPortsInUse reads a fake /proc too (holder without a visible fd has pid null)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tend-proc-'));
  mkdirSync(join(root, 'net'));
  writeFileSync(join(root, 'net', 'tcp'), 'hdr\n   0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 5555 1\n');
  const uses = await hostPortsInUse({ procRoot: root });
  assert.deepEqual(uses, [{ protocol: 'tcp', address: '0.0.0.0', port: 8080, inode: 5555, pid: null, command: null }]);
});
