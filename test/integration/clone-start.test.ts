/**
 * A warm clone's start (issue 15 §2), through the real QEMU backend against the fake
 * qemu-system-x86_64 (which logs every QMP command) and a loopback sshd as the "guest", whose
 * `sudo` is a fake that logs which guest step ran (the identity step or the volume mounts) into
 * the same log, and fails it on request:
 *  - on the project network, the clone's project link is down from before the template's memory
 *    is loaded (so not even QEMU's post-load announcements leave with the template's MAC) until its
 *    identity step made the template's MAC and address its own; a failed identity step never
 *    brings it up: the clone's QEMU is gone and the clone abandoned.
 *  - a clone whose volumes cannot be plugged in (QEMU refuses device_add) or mounted (the guest's
 *    mount fails) is powered off cleanly and boots cold with its volumes in its argv, one line why.
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
import type { Project, VmSpec } from '../../schemas/model.js';
import type { FullBackend } from '../../schemas/ports.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { hostAlias, writePin } from '../../src/ssh/known-hosts.js';
import { readInstanceId } from '../../src/state/instance-id.js';
import { listTemplates } from '../../src/qemu/templates.js';
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
  root = await mkdtemp(join(tmpdir(), 'tend-clone-start-'));
  log = join(root, 'qmp.log');
  failDir = join(root, 'fail');
  const bin = join(root, 'bin');
  await mkdir(bin);
  await mkdir(failDir);
  // the guest's sudo: logs which step ran (its script says), fails it when asked
  await writeFile(
    join(bin, 'sudo'),
    [
      '#!/bin/sh',
      'case "$*" in *machine-id*) step=identity ;; *mountpoint*) step=mount ;; *) step=other ;; esac',
      `printf '{"guest":"%s"}\\n' "$step" >> '${log}'`,
      `if [ -e '${failDir}'/"$step" ]; then echo "fake $step failure" >&2; exit 1; fi`,
      // the identity step's new host key, as the real script installs it: sshd reloads on SIGHUP
      '[ $step = identity ] || exit 0',
      `printf '%s\n' "$4" | sed -n "s/^echo '*\\([A-Za-z0-9+\\/=]*\\)'* | base64 -d > \\/etc\\/ssh\\/ssh_host_ed25519_key$/\\1/p" | base64 -d > "$HOSTKEY.new"`,
      'chmod 600 "$HOSTKEY.new"; [ -s "$HOSTKEY.new" ] && mv "$HOSTKEY.new" "$HOSTKEY" && kill -HUP "$(cat "$SSHD_PID")"',
      '',
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
  const vm = (name: string, volumes: VmSpec['volumes'] = []) =>
    applyDefaults({
      name,
      image: { kind: 'path', ref: base },
      accel: 'tcg',
      warm: true,
      volumes,
      ssh: { user: sshd.user, privateKey: sshd.key },
    } as VmDraft);
  const vol = (name: string): VmSpec['volumes'] => [{ kind: 'named', name, target: '/data', readOnly: false }];
  // five VMs on the user network: the project network connects them
  project = {
    name: 'pn',
    dir: join(root, 'p'),
    files: [],
    vms: [vm('a'), vm('b'), vm('c'), vm('d', vol('dv')), vm('e', vol('ev'))],
    volumes: { dv: { size: 1 }, ev: { size: 1 } },
  };
  stateRoot = join(root, 'state');
  pd = projectDir(stateRoot, project.name, project.dir);

  // a's first Ready keeps the template (its host key pinned, as readiness would)
  const a = backendWith('');
  const spec = project.vms[0]!;
  await a.prepare(project, spec, { recreateDisk: false });
  started.push((await a.start(project, spec)).pid);
  const hostKey = (await readFile(join(sshd.dir, 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  await writePin(vmFile(pd, 'a', 'knownHosts'), {
    instanceId: await readInstanceId(pd, 'a'),
    alias: hostAlias('pn', 'a'),
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

function backendWith(mode: string): FullBackend {
  const env = {
    ...process.env,
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    FAKE_QEMU_QMP_LOG: log,
    FAKE_QEMU_GUEST_SSH: String(sshd.port),
    FAKE_QEMU_MODE: mode,
  };
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push((JSON.parse(s) as { msg: string }).msg) });
  return createQemuBackend({ stateRoot, env, log: logger, acpiPatienceMs: 2000 });
}

/** Prepare and start one VM; the log lines of QMP commands and guest steps of that start, in order. */
async function startClone(
  name: string,
  mode = '',
): Promise<{ entries: Entry[]; result?: { pid: number; restored: boolean }; error?: Error }> {
  const b = backendWith(mode);
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

test("a project-network clone's link is down from before its load until its identity is its own", { timeout: 60_000 }, async () => {
  const { entries: es, result, error } = await startClone('b');
  assert.ifError(error);
  assert.equal(result?.restored, true, 'b was restored from the template');
  const seq = es.map(label);
  assert.deepEqual(
    seq,
    ['set_link:down', 'migrate-incoming', 'set_link:down', 'cont', 'guest:identity', 'set_link:up'],
    'link down before the load and before cont, up only after the identity step',
  );
  for (const e of es.filter((x) => x.execute === 'set_link')) assert.equal(e.arguments?.name, 'pn0', 'the project netdev');
});

test('a failed identity step never brings the project link up: the clone is gone and abandoned', { timeout: 60_000 }, async () => {
  await writeFile(join(failDir, 'identity'), '');
  try {
    const { entries: es, error } = await startClone('c');
    assert.match(String(error?.message), /could not make the clone's identity its own .*fake identity failure/);
    assert.deepEqual(es.filter((e) => e.execute === 'set_link').map(label), ['set_link:down', 'set_link:down'], 'the link never came up');
    const pid = es.find((e) => e.execute === 'cont')?.pid;
    assert.ok(pid !== undefined && !pidAlive(pid), "the clone's QEMU is gone");
    assert.ok(!existsSync(vmFile(pd, 'c', 'clone')), 'abandoned: the next start boots a fresh disk');
    assert.ok(
      lines.some((l) => /^warm clone abandoned: c: could not make the clone's identity its own/.test(l)),
      lines.join('\n'),
    );
  } finally {
    await rm(join(failDir, 'identity'));
  }
});

for (const [vm, how, mode, why] of [
  [
    'd',
    'QEMU refuses device_add',
    'hotplug-fail',
    /^d: QEMU refused device_add \(.*fake failure requested\)\); restarting it cold with them$/,
  ],
  [
    'e',
    "the guest's mount fails",
    '',
    /^e: the guest did not mount its volumes \(exit 1: fake mount failure\); restarting it cold with them$/,
  ],
] as const) {
  test(
    `a clone whose volumes cannot be plugged in (${how}) is powered off cleanly and boots cold with them`,
    { timeout: 60_000 },
    async () => {
      if (!mode) await writeFile(join(failDir, 'mount'), '');
      try {
        const before = lines.length;
        const { entries: es, result, error } = await startClone(vm, mode);
        assert.ifError(error);
        assert.equal(result?.restored, false, 'a cold boot, not a restore');
        const warned = lines.slice(before).filter((l) => /restarting it cold/.test(l));
        assert.equal(warned.length, 1, lines.slice(before).join('\n'));
        assert.match(warned[0]!, why);
        const restoredPid = es.find((e) => e.execute === 'cont')?.pid;
        assert.ok(restoredPid !== undefined && restoredPid !== result?.pid, 'the restored QEMU is not the one that runs');
        assert.ok(!pidAlive(restoredPid), 'the restored QEMU is gone');
        const seq = es.filter((e) => e.pid === restoredPid || e.guest).map(label);
        assert.ok(seq.includes('system_powerdown'), `the restored guest was powered off cleanly (ACPI), not killed: ${seq.join(' ')}`);
        assert.ok(seq.indexOf('set_link:up') < seq.indexOf('blockdev-add'), 'its link came up after its identity, before the plug');
        // the QEMU that runs now has the volume in its argv: the guest mounts it at boot, as any VM's
        const argv = execFileSync('cat', [`/proc/${result!.pid}/cmdline`], { encoding: 'utf8' }).split('\0');
        assert.ok(
          argv.some((a) => a.startsWith(`if=none,id=vol-${vm}v`)),
          argv.join(' '),
        );
        assert.ok(!argv.includes('-incoming'), 'booted, not restored');
      } finally {
        await rm(join(failDir, 'mount'), { force: true });
      }
    },
  );
}
