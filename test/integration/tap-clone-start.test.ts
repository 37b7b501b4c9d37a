/**
 * A warm clone's start on TAP (issue 15 §2, docs/decisions.md "Clones on TAP"), through the real
 * QEMU backend against the fake qemu-system-x86_64 (which logs every QMP command) and a loopback
 * sshd as the "guest" behind the management NIC's forward, whose `sudo` is a fake that logs which
 * guest step ran (the identity step or the DHCP renew) into the same log, and fails it on request:
 *  - the TAP NIC (netdev n0) is down from before the template's memory is loaded until the
 *    identity step gave it the clone's MAC; then it comes up and the renew runs;
 *  - a failed identity step never brings it up, and a renew that gets no lease leaves no clone
 *    running: the clone's QEMU is gone and the clone abandoned.
 * What the guest does with it (its own MAC and lease on a real bridge) is test/e2e/tap.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import type { FullBackend } from '../../schemas/ports.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { hostAlias, writePin } from '../../src/ssh/known-hosts.js';
import { readInstanceId } from '../../src/state/instance-id.js';
import { listTemplates } from '../../src/qemu/templates.js';
import { tapMac } from '../../src/net/mac.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
let root: string;
let sshd: TestSshd;
let log: string;
let failDir: string;
let project: Project;
let stateRoot: string;
let pd: string;
const lines: string[] = [];
const started: number[] = [];

interface Entry {
  pid?: number;
  execute?: string;
  arguments?: Record<string, unknown>;
  guest?: string;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tend-tap-clone-'));
  log = join(root, 'qmp.log');
  failDir = join(root, 'fail');
  const bin = join(root, 'bin');
  await mkdir(bin);
  await mkdir(failDir);
  // the guest's sudo: logs which step ran (its script says), fails it when asked; the renew
  // prints the lease's address, as the real one does
  await writeFile(
    join(bin, 'sudo'),
    [
      '#!/bin/sh',
      'case "$*" in *machine-id*) step=identity ;; *"no DHCP address"*) step=dhcp ;; *) step=other ;; esac',
      `printf '{"guest":"%s"}\\n' "$step" >> '${log}'`,
      `if [ -e '${failDir}'/"$step" ]; then echo "fake $step failure" >&2; exit 1; fi`,
      '[ $step = dhcp ] && { echo 10.78.0.77/24; exit 0; }',
      // the identity step's new host key, as the real script installs it: sshd reloads on SIGHUP
      '[ $step = identity ] || exit 0',
      `printf '%s\n' "$4" | sed -n "s/^echo '*\\([A-Za-z0-9+\\/=]*\\)'* | base64 -d > \\/etc\\/ssh\\/ssh_host_ed25519_key$/\\1/p" | base64 -d > "$HOSTKEY.new"`,
      'chmod 600 "$HOSTKEY.new"; [ -s "$HOSTKEY.new" ] && mv "$HOSTKEY.new" "$HOSTKEY" && kill -HUP "$(cat "$SSHD_PID")"',
      '',
    ].join('\n'),
  );
  await chmod(join(bin, 'sudo'), 0o755);
  sshd = await startTestSshd({ pathDirs: [bin] });
  const sudo = await readFile(join(bin, 'sudo'), 'utf8');
  await writeFile(
    join(bin, 'sudo'),
    sudo.replace('#!/bin/sh\n', `#!/bin/sh\nHOSTKEY='${join(sshd.dir, 'host_ed25519')}'; SSHD_PID='${join(sshd.dir, 'sshd.pid')}'\n`),
  );
  await copyFile(join(sshd.dir, 'host_ed25519'), join(sshd.dir, 'host_ed25519.template'));
  const base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  const vm = (name: string) =>
    applyDefaults({
      name,
      image: { kind: 'path', ref: base },
      accel: 'tcg',
      warm: true,
      network: { mode: 'tap', bridge: 'br0' },
      ssh: { user: sshd.user, privateKey: sshd.key },
    } as VmDraft);
  project = { name: 'tap', dir: join(root, 'p'), files: [], vms: [vm('a'), vm('b'), vm('c'), vm('d')], volumes: {} };
  stateRoot = join(root, 'state');
  pd = projectDir(stateRoot, project.name, project.dir);

  // a's first Ready keeps the template (its host key pinned, as readiness would)
  const a = backendWith();
  const spec = project.vms[0]!;
  await a.prepare(project, spec, { recreateDisk: false });
  started.push((await a.start(project, spec)).pid);
  const hostKey = (await readFile(join(sshd.dir, 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  await writePin(vmFile(pd, 'a', 'knownHosts'), {
    instanceId: await readInstanceId(pd, 'a'),
    alias: hostAlias('tap', 'a'),
    keys: [hostKey],
  });
  await a.markReady!(project, 'a', true);
  assert.equal((await listTemplates(stateRoot)).length, 1, lines.join('\n'));
});

after(async () => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await sshd?.dispose();
  await rm(root, { recursive: true, force: true });
});

function backendWith(): FullBackend {
  const env = {
    ...process.env,
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    FAKE_QEMU_QMP_LOG: log,
    FAKE_QEMU_GUEST_SSH: String(sshd.port),
  };
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push((JSON.parse(s) as { msg: string }).msg) });
  return createQemuBackend({ stateRoot, env, log: logger, acpiPatienceMs: 2000 });
}

/** Prepare and start one VM; the log lines of QMP commands and guest steps of that start, in order. */
async function startClone(name: string): Promise<{ entries: Entry[]; result?: { pid: number; restored: boolean }; error?: Error }> {
  const b = backendWith();
  const spec = project.vms.find((v) => v.name === name)!;
  await b.prepare(project, spec, { recreateDisk: false });
  assert.ok(existsSync(vmFile(pd, name, 'clone')), `${name} is prepared as a clone`);
  // the guest of every clone starts as the template's: with its host key
  await copyFile(join(sshd.dir, 'host_ed25519.template'), join(sshd.dir, 'host_ed25519'));
  await sshd.restart();
  await writeFile(log, '');
  try {
    const r = await b.start(project, spec);
    started.push(r.pid);
    return { entries: await entries(), result: { pid: r.pid, restored: r.restored === true } };
  } catch (err) {
    return { entries: await entries(), error: err as Error };
  }
}

async function entries(): Promise<Entry[]> {
  return (await readFile(log, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Entry)
    .filter((e) => e.execute !== 'query-status' && e.execute !== 'qmp_capabilities');
}

const label = (e: Entry): string =>
  e.guest ? `guest:${e.guest}` : e.execute === 'set_link' ? `set_link:${e.arguments?.up ? 'up' : 'down'}` : (e.execute ?? '?');

test("a TAP clone's NIC is off the bridge from before its load until its MAC is its own; then the renew", { timeout: 60_000 }, async () => {
  const { entries: es, result, error } = await startClone('b');
  assert.ifError(error);
  assert.equal(result?.restored, true, 'b was restored from the template');
  assert.deepEqual(
    es.map(label),
    ['set_link:down', 'migrate-incoming', 'set_link:down', 'cont', 'guest:identity', 'set_link:up', 'guest:dhcp'],
    'link down before the load and before cont, up only after the identity step, then the DHCP renew',
  );
  for (const e of es.filter((x) => x.execute === 'set_link')) assert.equal(e.arguments?.name, 'n0', 'the TAP netdev');
  // the clone runs with its own MAC on the TAP NIC, the management NIC beside it
  const argv = execFileSync('cat', [`/proc/${result!.pid}/cmdline`], { encoding: 'utf8' }).split('\0');
  assert.ok(argv.includes(`virtio-net-pci,netdev=n0,mac=${tapMac(pd, 'b')}`), argv.join(' '));
  assert.ok(
    argv.some((x) => /^user,id=tm0,restrict=on,ipv6=off,hostfwd=tcp:127\.0\.0\.1:\d+-:22$/.test(x)),
    argv.join(' '),
  );
  assert.ok(
    lines.some((l) =>
      new RegExp(`^warm clone of template .*TAP MAC ${tapMac(pd, 'b')} and DHCP address \\(10\\.78\\.0\\.77/24\\)`).test(l),
    ),
    lines.join('\n'),
  );
});

for (const [vm, step, seq, why] of [
  ['c', 'identity', ['set_link:down', 'set_link:down'], /could not make the clone's identity its own .*fake identity failure/],
  ['d', 'dhcp', ['set_link:down', 'set_link:down', 'set_link:up'], /the clone's TAP NIC got no DHCP lease .*fake dhcp failure/],
] as const) {
  test(`a TAP clone whose ${step} step fails is not left running: its QEMU is gone and it is abandoned`, { timeout: 60_000 }, async () => {
    await writeFile(join(failDir, step), '');
    try {
      const { entries: es, error } = await startClone(vm);
      assert.match(String(error?.message), why);
      assert.deepEqual(es.filter((e) => e.execute === 'set_link').map(label), seq);
      const pid = es.find((e) => e.execute === 'cont')?.pid;
      assert.ok(pid !== undefined && !pidAlive(pid), "the clone's QEMU is gone");
      assert.ok(!existsSync(vmFile(pd, vm, 'clone')), 'abandoned: the next start boots a fresh disk');
    } finally {
      await rm(join(failDir, step));
    }
  });
}
