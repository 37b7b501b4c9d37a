/**
 * Issue 15 §3b/§3c: `tend provision` on a Ready VM, and the first one, open ONE SSH connection. The readiness wait's
 * connection (banner, login, the boot-id check that skips `cloud-init status --wait`) is checked
 * against the pinned host key and carries the healthcheck and the provision steps.
 *
 * Against a real OpenSSH server on loopback behind a TCP proxy that counts connections (the VM's
 * recorded SSH port is the proxy's), with a fake `cloud-init` in the sessions' PATH that counts
 * its runs. The VM itself is the in-memory backend's (running); the guest is the real SSH guest.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convergeCommand } from '../../src/cli/commands/converge.js';
import { provisionCommand } from '../../src/cli/commands/provision.js';
import { loadContext, type GlobalOptions } from '../../src/cli/context.js';
import { createSshGuest } from '../../src/ssh/guest.js';
import { vmDir, vmFile } from '../../src/state/paths.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let work = '';
let state = '';
let pd = '';
let g: GlobalOptions;

/** A TCP proxy to the sshd: how many connections were made, how many are still open. */
const proxy = { server: undefined as Server | undefined, port: 0, accepted: 0, open: new Set<Socket>() };

const lines = async (name: string): Promise<string[]> =>
  (await readFile(join(work, name), 'utf8').catch(() => '')).split('\n').filter(Boolean);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tend-pconn-'));
  state = join(work, 'state');
  const bin = join(work, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'cloud-init'), `#!/bin/sh\necho "$*" >> ${work}/cloud-init-runs\nexit 0\n`, { mode: 0o755 });
  sshd = await startTestSshd({ pathDirs: [bin] });
  proxy.server = createServer((down) => {
    proxy.accepted++;
    proxy.open.add(down);
    const up = connect(sshd.port, '127.0.0.1');
    down.pipe(up).pipe(down);
    const gone = (): void => {
      proxy.open.delete(down);
      down.destroy();
      up.destroy();
    };
    down.on('close', gone).on('error', gone);
    up.on('close', gone).on('error', gone);
  });
  await new Promise<void>((r) => proxy.server?.listen(0, '127.0.0.1', r));
  const a = proxy.server.address();
  proxy.port = typeof a === 'object' && a ? a.port : 0;

  const cwd = join(work, 'project');
  await mkdir(cwd);
  await writeFile(join(cwd, 'base.qcow2'), '');
  await writeFile(
    join(cwd, 'tend.yaml'),
    [
      'name: pconn',
      'services:',
      '  web:',
      '    image: ./base.qcow2',
      `    ssh: { user: ${sshd.user}, private_key: ${sshd.key} }`,
      `    healthcheck: { test: ["CMD-SHELL", "echo hc >> ${work}/hc-runs"], interval: 1s, retries: 2 }`,
      '    provision:',
      `      - shell: echo step >> ${work}/step-runs`,
      '',
    ].join('\n'),
  );
  const clock = new ManualClock();
  const mem = new MemoryBackend({ now: () => clock.now() });
  g = { cwd, stateDir: state, backend: mem, guest: mem, clock, wait: false };
  await convergeCommand(g); // running, per the in-memory backend
  pd = (await loadContext(g)).projDir;
  await mkdir(vmDir(pd, 'web'), { recursive: true });
  await writeFile(vmFile(pd, 'web', 'ports'), JSON.stringify({ ssh: `127.0.0.1:${proxy.port}` }));
  await writeFile(vmFile(pd, 'web', 'instanceId'), 'iid-1\n');
});

after(async () => {
  for (const s of proxy.open) s.destroy();
  await new Promise((r) => proxy.server?.close(r));
  await sshd.dispose();
  await rm(work, { recursive: true, force: true });
});

/**
 * The guest's host keys as the cloud-init wait lists them: the sshd's own key file (the guest
 * lists the key it serves), or `elsewhere` (a key it does not serve: cloud-init may have replaced
 * it). No cloud-init run directory: the fake `cloud-init status --wait` is what waits.
 */
const provision = (hostKeys: 'served' | 'elsewhere' = 'served') =>
  provisionCommand({
    ...g,
    guest: createSshGuest({
      stateRoot: state,
      timeouts: { ssh: 20_000, login: 20_000, cloudInit: 20_000 },
      guestPaths: {
        cloudInitRunDir: join(work, 'no-cloud-init-run-dir'),
        hostKeys: hostKeys === 'served' ? join(sshd.dir, 'host_ed25519.pub') : join(work, 'elsewhere', 'ssh_host_*_key.pub'),
      },
    }),
  });

/** Every connection tend opened is closed soon after the command: none is left to hold the process. */
async function allClosed(): Promise<void> {
  for (let i = 0; i < 40 && proxy.open.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(proxy.open.size, 0, 'no SSH connection is left open after the command');
}

test('first tend provision: cloud-init is waited for, and the same connection (its key listed by the guest) serves pin, healthcheck and step', async () => {
  const before = proxy.accepted;
  const r = await provision();
  assert.equal(r.ok, true, JSON.stringify(r.vms));
  assert.equal((await lines('cloud-init-runs')).length, 1, 'cloud-init status --wait ran: no boot recorded yet');
  assert.deepEqual(await lines('step-runs'), ['step']);
  assert.deepEqual(await lines('hc-runs'), ['hc']);
  assert.match(await readFile(vmFile(pd, 'web', 'knownHosts'), 'utf8'), /^tend-pconn-web ssh-ed25519 /m);
  // cloud-init done, the guest lists the key the readiness connection's server presented among its
  // host keys: it is final, so it is pinned and that connection is kept (issue 15 §3c)
  assert.equal(proxy.accepted - before, 1, 'one SSH connection for the whole first run');
  await allClosed();
});

test('tend provision on a Ready VM in the same boot: ONE connection for readiness, pin check, healthcheck and the step', async () => {
  const before = proxy.accepted;
  const r = await provision();
  assert.equal(r.ok, true, JSON.stringify(r.vms));
  assert.equal(proxy.accepted - before, 1, 'one SSH connection for the whole run');
  assert.equal((await lines('cloud-init-runs')).length, 1, 'same boot: cloud-init not waited for again');
  assert.deepEqual(await lines('step-runs'), ['step', 'step'], 'the step ran again (tend provision ignores the cache)');
  assert.deepEqual(await lines('hc-runs'), ['hc', 'hc'], 'readiness really observed: the healthcheck ran');
  await allClosed();
});

test('the readiness connection is held to the pin: a changed host key on the same disk fails before any step runs', async () => {
  const pinned = await readFile(vmFile(pd, 'web', 'knownHosts'), 'utf8');
  await sshd.newHostKey();
  await sshd.restart();
  const before = proxy.accepted;
  const r = await provision();
  assert.equal(r.ok, false);
  assert.match(r.vms.web?.error ?? '', /host key of web .* changed on the same disk/);
  assert.equal(proxy.accepted - before, 1);
  assert.deepEqual(await lines('step-runs'), ['step', 'step'], 'no step ran against the unknown host');
  assert.deepEqual(await lines('hc-runs'), ['hc', 'hc'], 'nor the healthcheck');
  assert.equal(await readFile(vmFile(pd, 'web', 'knownHosts'), 'utf8'), pinned, 'the pin was not overwritten');
  await allClosed();
});

test('a rebooted guest (another boot id recorded) is waited for again; a key it does not list is pinned on a new connection', async () => {
  await rm(vmFile(pd, 'web', 'knownHosts'));
  await writeFile(vmFile(pd, 'web', 'cloudInitDone'), '00000000-0000-4000-8000-000000000000\n');
  const before = proxy.accepted;
  const r = await provision('elsewhere');
  assert.equal(r.ok, true, JSON.stringify(r.vms));
  assert.equal((await lines('cloud-init-runs')).length, 2, 'another boot: cloud-init waited for');
  assert.equal(proxy.accepted - before, 2, 'the key presented before cloud-init finished is not pinned: a new connection is');
  assert.deepEqual(await lines('step-runs'), ['step', 'step', 'step']);
  await allClosed();
});
