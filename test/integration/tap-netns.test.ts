/**
 * TAP networking for real, inside network namespaces this test creates (root, iproute2,
 * dnsmasq-base, isc-dhcp-client): a bridge with dnsmasq serving DHCP, a TAP device on it that
 * a real QEMU (paused, no guest) opens with tend's TAP argv, and a "guest" (a veth in its own
 * namespace with the VM's MAC) whose address tend finds from the dnsmasq lease, then from the
 * neighbour table once it talks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults } from '../../schemas/defaults.js';
import { buildArgv } from '../../src/qemu/argv.js';
import { tapMac } from '../../src/net/mac.js';
import { findGuestIp } from '../../src/net/guest-ip.js';

function sh(cmd: string[], okCodes = [0]): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  if (!okCodes.includes(r.status ?? -1)) throw new Error(`${cmd.join(' ')} -> ${r.status}: ${r.stderr}`);
  return r.stdout;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  'TAP on a bridge in a network namespace: QEMU opens the TAP; the guest IP is found by lease, then neighbour',
  { timeout: 120_000 },
  async (t) => {
    assert.equal(process.getuid?.(), 0, 'this test creates network namespaces: run it as root (CI does)');
    const id = `${process.pid % 100000}`;
    const hostNs = `tend-br-${id}`;
    const guestNs = `tend-g-${id}`;
    const dir = mkdtempSync(join(tmpdir(), 'tend-tap-'));
    const leases = join(dir, 'dnsmasq.leases');
    const mac = tapMac(dir, 'web');
    const pids: number[] = [];
    t.after(async () => {
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', guestNs]);
      spawnSync('ip', ['netns', 'del', hostNs]);
      await rm(dir, { recursive: true, force: true });
    });
    const inHost = (...c: string[]): string => sh(['ip', 'netns', 'exec', hostNs, ...c]);
    const inGuest = (...c: string[]): string => sh(['ip', 'netns', 'exec', guestNs, ...c]);

    sh(['ip', 'netns', 'add', hostNs]);
    sh(['ip', 'netns', 'add', guestNs]);
    inHost('ip', 'link', 'set', 'lo', 'up');
    inHost('ip', 'link', 'add', 'br0', 'type', 'bridge');
    inHost('ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'br0');
    inHost('ip', 'link', 'set', 'br0', 'up');

    // 1. real QEMU accepts tend's TAP argv (buildArgv's NIC: a TAP device of its own, no bridge
    // helper needed) and opens it with the VM's MAC
    const vm = applyDefaults({ name: 'web', image: { kind: 'catalog', ref: 'debian:12' }, network: { mode: 'tap' } });
    const full = buildArgv({
      vm,
      accel: 'tcg',
      paths: { disk: '/x', seed: null, pidfile: '/x', qmp: '/x', serial: '/x', consoleLog: '/x', volumes: {} },
      ports: [],
      sshPort: 0,
      tapMac: mac,
    });
    const nic = full.flatMap((a, i) =>
      a === '-netdev' || (a === '-device' && full[i + 1].startsWith('virtio-net-pci')) ? [a, full[i + 1]] : [],
    );
    const argv = ['-S', '-nodefaults', '-display', 'none', '-machine', 'q35,accel=tcg', '-m', '64', ...nic, '-monitor', 'stdio'];
    const q = spawnSync('ip', ['netns', 'exec', hostNs, 'qemu-system-x86_64', ...argv], {
      input: 'info network\nquit\n',
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(q.stdout, /ifname=tap\d+/, `qemu said: ${q.stdout}\n${q.stderr}`);
    assert.match(q.stdout, new RegExp(`macaddr=${mac}`));

    // 2. dnsmasq on the bridge; a guest with the VM's MAC takes a lease
    const dns = spawn(
      'ip',
      [
        'netns',
        'exec',
        hostNs,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--port=0',
        '--interface=br0',
        '--bind-interfaces',
        '--dhcp-range=10.77.0.50,10.77.0.99,1h',
        `--dhcp-leasefile=${leases}`,
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ],
      { stdio: 'ignore' },
    );
    if (dns.pid) pids.push(dns.pid);
    sh(['ip', 'link', 'add', `vh${id}`, 'type', 'veth', 'peer', 'name', `vg${id}`]);
    sh(['ip', 'link', 'set', `vh${id}`, 'netns', hostNs]);
    sh(['ip', 'link', 'set', `vg${id}`, 'netns', guestNs]);
    inHost('ip', 'link', 'set', `vh${id}`, 'master', 'br0');
    inHost('ip', 'link', 'set', `vh${id}`, 'up');
    inGuest('ip', 'link', 'set', `vg${id}`, 'address', mac);
    inGuest('ip', 'link', 'set', `vg${id}`, 'up');
    await sleep(1000);
    const dh = spawn(
      'ip',
      [
        'netns',
        'exec',
        guestNs,
        'dhclient',
        '-d',
        '-1',
        '-lf',
        join(dir, 'dhclient.leases'),
        '-pf',
        join(dir, 'dhclient.pid'),
        '-sf',
        '/bin/true',
        `vg${id}`,
      ],
      { stdio: 'ignore' },
    );
    if (dh.pid) pids.push(dh.pid);
    for (let i = 0; i < 100 && !existsSync(leases); i++) await sleep(200);
    for (let i = 0; i < 100 && !readFileSync(leases, 'utf8').includes(mac); i++) await sleep(200);
    assert.match(readFileSync(leases, 'utf8'), new RegExp(mac));

    // dnsmasq itself adds a neighbour entry when it answers: forget it, so the lease is all there is
    inHost('ip', 'neigh', 'flush', 'dev', 'br0');
    const byLease = await findGuestIp(mac, { netns: hostNs, leaseFiles: [leases] });
    assert.equal(byLease?.source, 'lease');
    assert.match(byLease?.address ?? '', /^10\.77\.0\.(5\d|[6-9]\d)$/);

    // 3. once the guest talks (here: a static address that differs from the lease), the neighbour table wins
    inGuest('ip', 'addr', 'add', '10.77.0.7/24', 'dev', `vg${id}`);
    // a UDP datagram to it makes the host resolve its MAC (ARP) into the neighbour table
    inHost(
      process.execPath,
      '-e',
      "const s=require('dgram').createSocket('udp4');s.send('x',9,'10.77.0.7',()=>setTimeout(()=>process.exit(0),500))",
    );
    const byNeighbour = await findGuestIp(mac, { netns: hostNs, leaseFiles: [leases] });
    assert.deepEqual(byNeighbour, { address: '10.77.0.7', source: 'neighbour', dev: 'br0' });
  },
);
