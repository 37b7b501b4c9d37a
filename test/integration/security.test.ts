/**
 * Security, mechanism side (issue 13 §2), after a real `tend up` (built CLI, fake QEMU, loopback
 * sshd as the guest) of a VM with a generated key, a host folder, a port without a host address
 * and one the file binds to 0.0.0.0:
 *  - every folder of the state dir (and the short socket folder) is 0700, every key 0600, every
 *    state file tend writes 0600;
 *  - every socket listening for the project's processes (QEMU's forwards, virtiofsd, `tend
 *    watch` itself) is a unix socket in an owner-only folder or TCP on 127.0.0.1, except the one
 *    port the file names 0.0.0.0 for.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FILES, shortRuntimeDir, socketPath } from '../../src/state/paths.js';
import type { TestSshd } from '../helpers/sshd.js';
import { freePort } from '../helpers/sshd.js';
import { ensureBuilt } from './cli-harness.js';
import { chaosProject, killAll, processesOf, run, startFakeGuest, tendAsync, type ChaosProject } from './chaos-harness.js';

let work: string;
let sshd: TestSshd;
let p: ChaosProject;
let openPort: number;

before(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tend-sec-'));
  sshd = await startFakeGuest(work);
  p = chaosProject(sshd, 1, { hostFolder: true, name: 'sec' });
  openPort = await freePort();
  // a generated key (no private_key), a port on the default address, one the file opens to all
  writeFileSync(
    join(p.cwd, 'tend.yaml'),
    `name: sec\nservices:\n  web0:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { memory_mb: 128 }\n` +
      `    ports: ["80", "0.0.0.0:${openPort}:8080"]\n    volumes: ["./share:/srv/share"]\n    cloud_init: { user: ${sshd.user} }\n`,
  );
  p.env.FAKE_QEMU_LISTEN_ALL = '1';
});

after(async () => {
  if (p) killAll(p);
  await sshd?.dispose();
  await rm(work, { recursive: true, force: true });
});

function walk(dir: string, out: { path: string; dir: boolean; mode: number }[] = []): typeof out {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    out.push({ path, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) walk(path, out);
  }
  return out;
}

/** Listening TCP sockets (/proc/net/tcp{,6}) by inode: "address:port". */
function listening(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c[3] !== '0A') continue; // LISTEN
      const [hex, port] = (c[1] ?? ':').split(':') as [string, string];
      const addr =
        hex.length === 8
          ? (hex.match(/../g) ?? [])
              .reverse()
              .map((b) => parseInt(b, 16))
              .join('.')
          : hex === '00000000000000000000000000000000'
            ? '::'
            : hex === '00000000000000000000000001000000'
              ? '::1'
              : `[${hex}]`;
      out.set(c[9] as string, `${addr}:${parseInt(port, 16)}`);
    }
  }
  return out;
}

function socketInodes(pid: number): string[] {
  const out: string[] = [];
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' }) as string);
      if (m) out.push(m[1] as string);
    }
  } catch {
    // gone
  }
  return out;
}

test(
  'state folders 0700, keys and state files 0600; listening sockets on 127.0.0.1 unless the file names an address',
  { timeout: 120_000 },
  async () => {
    // the generated key must be in the guest's authorized_keys: the fake guest accepts the sshd's
    // own client key only, so readiness is not what this test is about; up may stop at SSH
    let watchPid = 0;
    const watch = tendAsync(['watch'], p, { onStart: (pid) => (watchPid = pid) });
    const t0 = Date.now();
    while ((processesOf(p).qemu.get('web0')?.length ?? 0) !== 1) {
      assert.ok(Date.now() - t0 < 60_000, 'watch started the VM');
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 500));

    const entries = walk(p.stateDir).filter((e) => !e.path.startsWith(join(p.stateDir, '.cache')));
    for (const e of entries.filter((x) => x.dir)) assert.equal(e.mode, 0o700, `${e.path} is ${e.mode.toString(8)}`);
    const runtime = shortRuntimeDir(p.env);
    assert.equal(statSync(runtime).mode & 0o777, 0o700, `${runtime}`);
    const vm = dirname(socketPath(p.projDir, 'web0', 'qmp', p.env));
    assert.equal(statSync(vm).mode & 0o777, 0o700, `the QMP socket's folder ${vm}`);
    const tendWrites = [
      FILES.privateKey,
      FILES.publicKey,
      FILES.applied,
      FILES.ports,
      FILES.instanceId,
      FILES.helpers,
      FILES.seed,
      FILES.disk,
    ];
    const checked = entries.filter((e) => !e.dir && tendWrites.some((n) => e.path.endsWith(`/vms/web0/${n}`)));
    assert.equal(checked.length, tendWrites.length, `found ${checked.map((c) => c.path).join(', ')}`);
    for (const e of checked) assert.equal(e.mode, 0o600, `${e.path} is ${e.mode.toString(8)}`);
    for (const e of entries.filter((x) => !x.dir && x.path.endsWith('.json')))
      assert.equal(e.mode, 0o600, `${e.path} is ${e.mode.toString(8)}`);

    const listen = listening();
    const { qemu, helpers } = processesOf(p);
    const pids = [...(qemu.get('web0') ?? []), ...(helpers.get('web0') ?? []), watchPid];
    const bound = pids.flatMap((pid) => socketInodes(pid).flatMap((ino) => (listen.has(ino) ? [listen.get(ino) as string] : [])));
    assert.ok(bound.length >= 3, `the forwards listen (ssh, 80, ${openPort}): ${bound.join(', ')}`);
    for (const b of bound) {
      if (b === `0.0.0.0:${openPort}`) continue;
      assert.match(b, /^127\.0\.0\.1:\d+$/, `${b} listens beyond loopback though the file names no address`);
    }
    assert.ok(bound.includes(`0.0.0.0:${openPort}`), `the port the file opens is there: ${bound.join(', ')}`);

    process.kill(watchPid, 'SIGTERM');
    await watch;
    assert.equal(run(['down'], p).code, 0);
  },
);
