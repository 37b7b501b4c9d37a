/**
 * SSH over TAP networking: which lease files are read, where SSH goes (the guest's own address,
 * port 22), what the user is told while the address is unknown, and waitForSsh polling for the
 * address inside its banner stage (against a loopback server that only speaks the banner).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { applyDefaults } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { sshArgv } from '../../src/cli/commands/ssh.js';
import { DEFAULT_LEASE_FILES, type GuestAddress } from '../../src/net/guest-ip.js';
import { tapMac } from '../../src/net/mac.js';
import { waitForSsh, type GuestLocator } from '../../src/ssh/ready.js';
import { addressUnknownMessage, leaseFiles, tapGuest, tapReadiness, tapSshTarget, type FindGuestIp } from '../../src/ssh/target.js';
import { projectDir } from '../../src/state/paths.js';
import { rejectsWith } from '../helpers/rejects.js';

const img = { kind: 'catalog', ref: 'debian:12' } as const;
const STATE = '/state';
const vm = applyDefaults({ name: 'web', image: img, network: { mode: 'tap', bridge: 'br0' } });
const project: Project = { name: 'shop', dir: '/src/shop', files: ['/src/shop/VMFile.kdl'], vms: [vm], volumes: {} };
const MAC = tapMac(projectDir(STATE, 'shop', '/src/shop'), 'web');

/** A findGuestIp stand-in answering from a list, one answer per call (the last one repeats). */
function scripted(answers: (GuestAddress | null)[], seen: { mac: string; leaseFiles: readonly string[] | undefined }[] = []): FindGuestIp {
  let i = 0;
  return async (mac, o = {}) => {
    seen.push({ mac, leaseFiles: o.leaseFiles });
    return answers[Math.min(i++, answers.length - 1)] ?? null;
  };
}

describe('lease files', () => {
  test('the defaults unless $TEND_LEASE_FILES names others; an empty entry splices the defaults in', () => {
    assert.deepEqual(leaseFiles({}), DEFAULT_LEASE_FILES);
    assert.deepEqual(leaseFiles({ TEND_LEASE_FILES: '' }), DEFAULT_LEASE_FILES);
    assert.deepEqual(leaseFiles({ TEND_LEASE_FILES: '/run/br0.leases' }), ['/run/br0.leases']);
    assert.deepEqual(leaseFiles({ TEND_LEASE_FILES: '/a.leases:/b.leases' }), ['/a.leases', '/b.leases']);
    assert.deepEqual(leaseFiles({ TEND_LEASE_FILES: '/run/br0.leases:' }, ['/d1', '/d2']), ['/run/br0.leases', '/d1', '/d2']);
    assert.deepEqual(leaseFiles({ TEND_LEASE_FILES: ':/run/br0.leases' }, ['/d1']), ['/d1', '/run/br0.leases']);
    assert.deepEqual(leaseFiles({ TEND_LEASE_FILES: '/d1::/d1' }, ['/d1']), ['/d1']);
  });
});

describe('the SSH target of a TAP guest', () => {
  test("is the guest's own address on its sshd port, looked up by the VM's stable MAC in the configured lease files", async () => {
    const seen: { mac: string; leaseFiles: readonly string[] | undefined }[] = [];
    const t = await tapSshTarget(
      STATE,
      project,
      vm,
      { TEND_LEASE_FILES: '/tmp/x.leases' },
      scripted([{ address: '10.78.0.57', source: 'lease' }], seen),
    );
    assert.deepEqual(t, {
      host: '10.78.0.57',
      port: 22,
      user: 'debian',
      privateKey: `${projectDir(STATE, 'shop', '/src/shop')}/vms/web/id_ed25519`,
    });
    assert.deepEqual(seen, [{ mac: MAC, leaseFiles: ['/tmp/x.leases'] }]);
    const custom = applyDefaults({
      name: 'web',
      image: img,
      network: { mode: 'tap', bridge: 'br0' },
      ssh: { port: 2222, privateKey: '/keys/deploy', user: 'ops' },
    });
    const t2 = await tapSshTarget(STATE, project, custom, {}, scripted([{ address: '10.78.0.9', source: 'neighbour', dev: 'br0' }]));
    assert.deepEqual(t2, { host: '10.78.0.9', port: 2222, user: 'ops', privateKey: '/keys/deploy' });
  });

  test('without an address: GuestAddressUnknown naming the MAC, the bridge, the lease files read and $TEND_LEASE_FILES', async () => {
    await assert.rejects(
      tapSshTarget(STATE, project, vm, { TEND_LEASE_FILES: '/tmp/x.leases' }, scripted([null])),
      rejectsWith(
        'GuestAddressUnknown',
        new RegExp(
          `web has no known IPv4 address yet \\(TAP on br0, MAC ${MAC}\\).*/tmp/x\\.leases.*DHCP server.*TEND_LEASE_FILES.*tend logs web --console`,
        ),
      ),
    );
    const g = tapGuest(STATE, project, applyDefaults({ name: 'db', image: img, network: { mode: 'tap', bridge: null } }), {});
    assert.match(addressUnknownMessage(g, 600), /^db has no known IPv4 address after 600 s \(TAP on the bridge of its TAP device/);
    assert.match(addressUnknownMessage(g, 600), new RegExp(DEFAULT_LEASE_FILES.map((f) => f.replaceAll('.', '\\.')).join(', ')));
  });

  test('readiness: a waiting line first, then one line per address found or changed; the target follows the address', async () => {
    const lines: string[] = [];
    const r = tapReadiness(
      STATE,
      project,
      vm,
      {},
      (l) => lines.push(l),
      scripted([
        null,
        { address: '10.78.0.57', source: 'lease' },
        { address: '10.78.0.57', source: 'neighbour', dev: 'br0' },
        { address: '10.78.0.60', source: 'lease' },
      ]),
    );
    assert.equal(r.waiting, `waiting for the guest's address on br0 (MAC ${MAC})`);
    assert.equal(r.target.host, '');
    assert.equal(await r.locate.find(), null);
    assert.equal(await r.locate.find(), '10.78.0.57');
    assert.equal(await r.locate.find(), '10.78.0.57');
    assert.equal(await r.locate.find(), '10.78.0.60');
    assert.equal(r.target.host, '10.78.0.60');
    assert.deepEqual(lines, [
      'address 10.78.0.57 (from its DHCP lease): waiting for SSH on 10.78.0.57:22',
      'address 10.78.0.60 (from its DHCP lease): waiting for SSH on 10.78.0.60:22',
    ]);
  });
});

describe('tend ssh to a TAP guest', () => {
  test('goes to the address with the pin checked by alias, not by address', () => {
    const argv = sshArgv({
      host: '10.78.0.57',
      port: 22,
      user: 'debian',
      keys: ['/k'],
      pin: { file: '/vm/known_hosts', alias: 'tend-shop-web', keyTypes: ['ssh-ed25519'] },
    });
    assert.ok(
      argv.includes('HostKeyAlias=tend-shop-web') && argv.includes('CheckHostIP=no') && argv.includes('StrictHostKeyChecking=yes'),
      argv.join(' '),
    );
    assert.deepEqual(argv.slice(-4), ['-l', 'debian', '--', '10.78.0.57']);
  });
});

describe('waitForSsh with a locator', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    // answers with a banner, then hangs up: enough for the banner stage, never a login
    server = createServer((sock) => {
      sock.on('error', () => {});
      sock.end('SSH-2.0-OpenSSH_9.2 fake\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    port = typeof a === 'object' && a ? a.port : 0;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const base = () => ({ host: '', port, user: 'debian', privateKey: '/nonexistent/key', cloudInit: false, retryDelayMs: 50 });

  test('waits in the banner stage while the address is unknown, then fails with the locator message', async () => {
    let calls = 0;
    const locate: GuestLocator = {
      find: async () => {
        calls++;
        return null;
      },
      unknown: (s) => `no address after ${s} s, MAC 52:54:00:aa:bb:cc`,
    };
    const stages: string[] = [];
    const t0 = Date.now();
    await assert.rejects(
      waitForSsh({ ...base(), timeoutMs: 600, locate, onStage: (s) => stages.push(s) }),
      rejectsWith('GuestAddressUnknown', /^no address after 1 s, MAC 52:54:00:aa:bb:cc$/),
    );
    assert.ok(Date.now() - t0 >= 550, 'it kept waiting until the banner stage limit');
    assert.ok(calls >= 5, `looked up ${calls} times`);
    assert.deepEqual(stages, ['banner']);
  });

  test('once found, the banner and the login go to that address', async () => {
    const answers: (string | null)[] = [null, null, '127.0.0.1'];
    const locate: GuestLocator = {
      find: async () => (answers.length > 0 ? (answers.shift() ?? null) : '127.0.0.1'),
      unknown: () => 'never',
    };
    const stages: string[] = [];
    await assert.rejects(
      waitForSsh({ ...base(), timeoutMs: 5000, loginTimeoutMs: 300, locate, onStage: (s) => stages.push(s) }),
      // the banner came from the located address; the key does not exist, so login stops at once
      rejectsWith('SshKeyUnreadable', /\/nonexistent\/key/),
    );
    assert.deepEqual(answers, [], 'no banner attempt before the address was found');
    assert.deepEqual(stages, ['banner', 'login']);
  });

  test('an address that answers no banner: SshBannerTimeout at that address, with hints for a bridge', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const a = closed.address();
    const deadPort = typeof a === 'object' && a ? a.port : 0;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const locate: GuestLocator = { find: async () => '127.0.0.1', unknown: () => 'never' };
    await assert.rejects(
      waitForSsh({ ...base(), port: deadPort, timeoutMs: 300, locate }),
      rejectsWith('SshBannerTimeout', new RegExp(`no SSH server answered on 127\\.0\\.0\\.1:${deadPort} .*firewall on the bridge`)),
    );
  });
});
