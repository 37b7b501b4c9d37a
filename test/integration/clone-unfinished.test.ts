/**
 * A warm clone whose `tend up` was SIGKILLed during its identity step (src/qemu/clone.ts): its
 * QEMU runs on with the template's identity and its `clone.json` still there. The built CLI runs
 * against the fake qemu-system and a loopback sshd as the "guest", whose `sudo` logs which guest
 * step ran and hangs the identity step once when asked (so the kill lands inside it, every time):
 *  - `tend plan` (and ps) between the two runs shows the restart and why, and acts on nothing;
 *  - the next `tend up` does not adopt it: the killed run's QEMU is stopped, the VM is started
 *    again, the identity step runs to its end (new host key pinned, clone.json gone), and only
 *    then is the VM Ready.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';
import { ensureBuilt } from './cli-harness.js';
import { FAKE_DIR, killAll, processesOf, tendAsync, type ChaosProject } from './chaos-harness.js';

const root = mkdtempSync(join(tmpdir(), 'tend-clone-unfinished-'));
const log = join(root, 'guest.log');
const hangDir = join(root, 'hang');
let sshd: TestSshd | undefined;
const projects: ChaosProject[] = [];
after(async () => {
  for (const p of projects) killAll(p);
  // a hung identity step of the killed run lets go once its flag is gone
  rmSync(hangDir, { recursive: true, force: true });
  await sshd?.dispose();
  rmSync(root, { recursive: true, force: true });
});

/**
 * The guest's sudo: logs its step; the identity step hangs while `hang/identity` exists (taken by
 * the first identity step only), else installs the new host key as the real script does (sshd
 * reloads on SIGHUP); anything else runs as root would.
 */
function writeSudo(bin: string, hostKey: string, sshdPid: string): void {
  writeFileSync(
    join(bin, 'sudo'),
    [
      '#!/bin/sh',
      `HOSTKEY='${hostKey}'; SSHD_PID='${sshdPid}'`,
      'case "$*" in *machine-id*) step=identity ;; *) step=other ;; esac',
      `if [ $step = other ]; then [ "$1" = -n ] && shift; exec "$@"; fi`,
      `if mv '${hangDir}/identity' '${hangDir}/identity.held' 2>/dev/null; then`,
      `  printf '{"guest":"identity-hangs"}\\n' >> '${log}'`,
      `  while [ -e '${hangDir}/identity.held' ]; do sleep 0.1; done`,
      '  exit 1',
      'fi',
      `printf '{"guest":"identity"}\\n' >> '${log}'`,
      `printf '%s\\n' "$4" | sed -n "s/^echo '*\\([A-Za-z0-9+\\/=]*\\)'* | base64 -d > \\/etc\\/ssh\\/ssh_host_ed25519_key$/\\1/p" | base64 -d > "$HOSTKEY.new"`,
      'chmod 600 "$HOSTKEY.new"; [ -s "$HOSTKEY.new" ] && mv "$HOSTKEY.new" "$HOSTKEY" && kill -HUP "$(cat "$SSHD_PID")"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}

function chaosProjectNamed(name: string, vm: string, guest: TestSshd, base: string, stateDir: string): ChaosProject {
  const cwd = join(root, name);
  mkdirSync(cwd);
  writeFileSync(
    join(cwd, 'tend.yaml'),
    `name: ${name}\nservices:\n  ${vm}:\n    image: ${base}\n    accel: tcg\n    warm: true\n    vm: { memory_mb: 128 }\n    stop_grace_period: 2s\n` +
      `    ssh: { user: ${guest.user}, private_key: ${guest.key} }\n`,
  );
  const env: NodeJS.ProcessEnv = {
    PATH: `${FAKE_DIR}:${process.env.PATH ?? ''}`,
    FAKE_QEMU_MODE: '',
    FAKE_QEMU_GUEST_SSH: String(guest.port),
    XDG_CACHE_HOME: join(stateDir, '.cache'),
  };
  const p: ChaosProject = { cwd, stateDir, projDir: projectDir(stateDir, name, cwd), names: [vm], env };
  projects.push(p);
  return p;
}

/** The QEMU processes of the VM now (a stopped one may linger as a zombie of its reparented parent: not counted). */
const qemuOf = (p: ChaosProject, vm: string): number[] => processesOf(p).qemu.get(vm) ?? [];

const guestSteps = (): string[] =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { guest: string }).guest);

/** The public half of the guest's host key now (the fake identity step replaces only the private file). */
const hostKeyOf = (key: string): string =>
  execFileSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' }).trim().split(/\s+/).slice(0, 2).join(' ');

test(
  'a clone whose tend was SIGKILLed during its identity step is restarted by the next up, not adopted',
  { timeout: 180_000 },
  async () => {
    ensureBuilt();
    const bin = join(root, 'guest-bin');
    mkdirSync(bin);
    mkdirSync(hangDir);
    writeFileSync(log, '');
    writeFileSync(join(bin, 'cloud-init'), '#!/bin/sh\necho "status: done"\nexit 0\n', { mode: 0o755 });
    sshd = await startTestSshd({ pathDirs: [bin] });
    writeSudo(bin, join(sshd.dir, 'host_ed25519'), join(sshd.dir, 'sshd.pid'));
    const templateKey = hostKeyOf(join(sshd.dir, 'host_ed25519'));
    const base = join(root, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    const stateDir = join(root, 'state');
    mkdirSync(stateDir);

    // a warm VM's first Ready keeps the template (one VM per project: the same template key)
    const tpl = chaosProjectNamed('tpl', 'first', sshd, base, stateDir);
    const first = await tendAsync(['up'], tpl);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const down = await tendAsync(['down'], tpl);
    assert.equal(down.code, 0, down.stdout + down.stderr);

    // the clone's up, SIGKILLed while its identity step hangs in the guest
    const p = chaosProjectNamed('cl', 'c', sshd, base, stateDir);
    writeFileSync(join(hangDir, 'identity'), '');
    let tendPid = 0;
    const up1 = tendAsync(['up'], p, { onStart: (pid) => (tendPid = pid) });
    const t0 = Date.now();
    while (!guestSteps().includes('identity-hangs')) {
      assert.ok(Date.now() - t0 < 60_000, `the identity step is reached: ${guestSteps().join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(tendPid, 'SIGKILL');
    const killed = await up1;
    assert.equal(killed.signal, 'SIGKILL', killed.stdout + killed.stderr);
    // the hung guest step of the killed run ends (its session is gone); it changed nothing
    rmSync(join(hangDir, 'identity.held'), { force: true });

    const qemu1 = processesOf(p).qemu.get('c') ?? [];
    assert.equal(qemu1.length, 1, "the clone's QEMU runs on after tend was killed");
    const pid1 = qemu1[0]!;
    assert.ok(existsSync(vmFile(p.projDir, 'c', 'clone')), 'clone.json is still there: the identity step did not finish');
    assert.equal(hostKeyOf(join(sshd.dir, 'host_ed25519')), templateKey, "the guest still has the template's host key");

    // read-only commands show it and act on nothing
    const planRun = await tendAsync(['plan', '--json'], p);
    assert.equal(planRun.code, 0, planRun.stderr);
    const entry = (JSON.parse(planRun.stdout) as { entries: { vm: string; action: string; notes: string[] }[] }).entries.find(
      (e) => e.vm === 'c',
    );
    assert.equal(entry?.action, 'restart', planRun.stdout);
    assert.match(entry.notes.join('\n'), /its warm clone's identity step did not finish \(tend was stopped during it\): restarted/);
    const planText = await tendAsync(['plan'], p);
    assert.match(planText.stdout, /c +restart +its warm clone's identity step did not finish/);
    const psRun = await tendAsync(['ps', '--json'], p);
    assert.equal(psRun.code, 0, psRun.stderr);
    const row = (JSON.parse(psRun.stdout) as { vms: { name: string; ready: boolean; pid: number | null }[] }).vms.find(
      (v) => v.name === 'c',
    );
    assert.deepEqual([row?.pid, row?.ready], [pid1, false], psRun.stdout);
    assert.deepEqual(qemuOf(p, 'c'), [pid1], 'plan and ps left it running');
    assert.deepEqual(guestSteps(), ['identity-hangs'], 'no guest step ran since');

    // the next up restarts it, and the identity step runs to its end before it is Ready
    const up2 = await tendAsync(['up'], p);
    const out = up2.stdout + up2.stderr;
    if (process.env.SHOW) console.log(out);
    assert.equal(up2.code, 0, out);
    const why = out.search(/c: its warm clone's identity step did not finish \(tend was stopped during it\): restarting/);
    assert.ok(why >= 0, out);
    assert.ok(out.search(/c: ready\b/) > why, `Ready only after the restart:\n${out}`);
    assert.ok(!qemuOf(p, 'c').includes(pid1), "the killed run's QEMU was stopped");
    const qemu2 = processesOf(p).qemu.get('c') ?? [];
    assert.equal(qemu2.length, 1, out);
    assert.notEqual(qemu2[0], pid1);
    assert.deepEqual(guestSteps(), ['identity-hangs', 'identity'], 'the identity step ran again, to its end');
    assert.ok(!existsSync(vmFile(p.projDir, 'c', 'clone')), 'clone.json removed at the end of the identity step');
    const ownKey = hostKeyOf(join(sshd.dir, 'host_ed25519'));
    assert.notEqual(ownKey, templateKey, 'the guest has a host key of its own');
    const pinned = readFileSync(vmFile(p.projDir, 'c', 'knownHosts'), 'utf8');
    assert.ok(pinned.includes(ownKey) && !pinned.includes(templateKey), `its own key is pinned, not the template's:\n${pinned}`);
    const ps2 = JSON.parse((await tendAsync(['ps', '--json'], p)).stdout) as {
      vms: { name: string; ready: boolean; pid: number | null }[];
    };
    assert.deepEqual(
      ps2.vms.filter((v) => v.name === 'c').map((v) => [v.pid, v.ready]),
      [[qemu2[0], true]],
    );
    // converged: nothing more to do
    const plan2 = JSON.parse((await tendAsync(['plan', '--json'], p)).stdout) as { entries: { vm: string; action: string }[] };
    assert.equal(plan2.entries.find((e) => e.vm === 'c')?.action, 'none');
    const down2 = await tendAsync(['down'], p);
    assert.equal(down2.code, 0, down2.stdout + down2.stderr);
  },
);
