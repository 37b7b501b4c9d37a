/**
 * `tend exec` as a user meets it (issues 11 and 14): the built CLI, the fake QEMU, and a real
 * OpenSSH server on loopback as the guest (the fake QEMU forwards the VM's SSH port to it; its
 * client key is authorised for the current user and for one extra user this test creates).
 * What is asserted is what the user sees: output, exit codes (the guest command's, docker's
 * 125/126/127 for tend's own failures), stdin with -i, a terminal with -t, the shell form fed on
 * stdin, -u, and the next steps when SSH is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestSshd } from '../helpers/sshd.js';
import { CLI, ensureBuilt, type Run } from './cli-harness.js';
import { chaosProject, killAll, run, startFakeGuest, tendAsync, type ChaosProject } from './chaos-harness.js';

let work: string;
let sshd: TestSshd;
let p: ChaosProject;
// a second login user: the client key is authorised for it (useradd: the tests run as root, as CI does)
const other = `tendx${process.pid}`;
const otherHome = join(tmpdir(), `tend-exec-home-${process.pid}`);

before(async () => {
  ensureBuilt();
  // '*': no password, and not a locked account (sshd without PAM refuses those, even with a key)
  execFileSync('useradd', ['-m', '-d', otherHome, '-s', '/bin/sh', '-p', '*', other]);
  work = await mkdtemp(join(tmpdir(), 'tend-exec-'));
  sshd = await startFakeGuest(work, { users: [other] });
  p = chaosProject(sshd, 1, { name: 'ex' });
  const up = run(['up'], p);
  assert.equal(up.code, 0, `up: ${up.stdout}\n${up.stderr}`);
});

after(async () => {
  if (p) {
    run(['down'], p);
    killAll(p);
  }
  await sshd?.dispose();
  spawnSync('userdel', ['-r', other], { stdio: 'ignore' });
  await rm(otherHome, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

/** The built CLI with `input` on its stdin. */
function withInput(args: string[], input: string): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, ...p.env, TEND_STATE_DIR: p.stateDir };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p.cwd, env, input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("exec exits with the guest command's code; 127/126 come from the guest's shell, 128+N from a signal", () => {
  const id = run(['exec', 'web0', '--', 'id', '-un'], p);
  assert.equal(id.code, 0, id.stderr);
  assert.equal(id.stdout, `${sshd.user}\n`);
  assert.equal(run(['exec', 'web0', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'], p).code, 7);
  const missing = run(['exec', 'web0', '--', 'no-such-command-here'], p);
  assert.equal(missing.code, 127, missing.stderr);
  assert.match(missing.stderr, /no-such-command-here: .*not found/);
  writeFileSync(join(work, 'not-executable'), 'echo hi\n', { mode: 0o644 });
  assert.equal(run(['exec', 'web0', '--', join(work, 'not-executable')], p).code, 126, 'a file that is not executable');
  assert.equal(run(['exec', 'web0', '--', 'sh', '-c', 'kill -9 $$'], p).code, 137, 'killed by SIGKILL: 128+9, as a shell says');
});

test("tend's own failures exit 125, in human and --json form", () => {
  const unknown = run(['exec', 'nosuch', '--', 'true'], p);
  assert.equal(unknown.code, 125, unknown.stderr);
  assert.match(unknown.stderr, /nosuch/);
  const badFlag = run(['exec', '--no-such-flag', 'web0', '--', 'true'], p);
  assert.equal(badFlag.code, 125, badFlag.stderr);
  const json = run(['--json', 'exec', 'nosuch', '--', 'true'], p);
  assert.equal(json.code, 125);
  assert.equal((JSON.parse(json.stderr.trim()) as { error: { exitCode: number } }).error.exitCode, 125);
  // other commands keep their codes
  assert.equal(run(['status', 'nosuch'], p).code, 2);
});

test('-u USER logs in as that user; a user the key is not authorised for gets a clear error (125)', () => {
  const as = run(['exec', '-u', other, 'web0', '--', 'id', '-un'], p);
  assert.equal(as.code, 0, as.stderr);
  assert.equal(as.stdout, `${other}\n`);
  const refused = run(['exec', '-u', 'nobody', 'web0', '--', 'id', '-un'], p);
  assert.equal(refused.code, 125);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, new RegExp(`user nobody does not accept ${sshd.key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(refused.stderr, /authorized_keys/);
});

test('no command: a shell that runs what stdin feeds it and exits with its code (also with -u)', () => {
  const sh = withInput(['exec', 'web0'], 'id -un\necho "in $0"\nexit 3\n');
  assert.equal(sh.code, 3, sh.stderr);
  assert.match(sh.stdout, new RegExp(`^${sshd.user}\\nin `));
  const as = withInput(['exec', '-u', other, 'web0'], 'id -un\n');
  assert.equal(as.code, 0, as.stderr);
  assert.equal(as.stdout.trim(), other);
});

test('-i forwards stdin; without it the command reads end-of-file at once; -t gives it a terminal; -it is accepted', () => {
  const piped = withInput(['exec', '-i', 'web0', '--', 'sh', '-c', 'wc -l'], 'a\nb\nc\n');
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stdout.trim(), '3');
  const t0 = Date.now();
  const closed = withInput(['exec', 'web0', '--', 'cat'], 'not forwarded\n');
  assert.equal(closed.code, 0, closed.stderr);
  assert.equal(closed.stdout, '');
  assert.ok(Date.now() - t0 < 20_000, 'cat without -i ends at once');
  const noTty = run(['exec', 'web0', '--', 'tty'], p);
  assert.equal(noTty.code, 1);
  const tty = run(['exec', '-t', 'web0', '--', 'tty'], p);
  assert.equal(tty.code, 0, tty.stderr);
  assert.match(tty.stdout, /^\/dev\/pts\/\d+\r?\n$/);
  const it = withInput(['exec', '-it', 'web0', '--', 'sh', '-c', 'tty >/dev/null && exit 4'], '');
  assert.equal(it.code, 4, it.stderr);
});

test('SSH refused: exit 125 and the error names `tend logs NAME --console` and `exec -w`, also with --json', async () => {
  await sshd.stop();
  try {
    const r = run(['exec', 'web0', '--', 'true'], p);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /tend logs web0 --console/);
    assert.match(r.stderr, /tend exec -w 5m web0 -- true/);
    const j = run(['--json', 'exec', 'web0', '--', 'true'], p);
    assert.equal(j.code, 125);
    const e = (JSON.parse(j.stderr.trim()) as { error: { reason: string; message: string; exitCode: number } }).error;
    assert.equal(e.exitCode, 125);
    assert.equal(e.reason, 'SshConnectFailed');
    assert.match(e.message, /tend logs web0 --console/);
    assert.match(e.message, /exec -w/);
  } finally {
    await sshd.start();
  }
  assert.equal(run(['exec', 'web0', '--', 'true'], p).code, 0);
});

test('docker habits: up -d says it is not needed and converges; logs -f --tail N', async () => {
  const up = run(['up', '-d'], p);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /-d is not needed: `tend up` returns once the VMs are converged/);
  const all = run(['logs', 'web0', '--tail', 'all'], p);
  assert.equal(all.code, 0, all.stderr);
  const n = all.stdout.trim().split('\n').length;
  assert.ok(n >= 3, `several events: ${all.stdout}`);
  const two = run(['logs', 'web0', '--tail', '2'], p);
  assert.deepEqual(two.stdout.trim().split('\n'), all.stdout.trim().split('\n').slice(-2));
  const follow = await tendAsync(['logs', '-f', '--tail', '1', 'web0'], p, { killAfterMs: 3000 });
  assert.equal(follow.signal, 'SIGKILL', 'still following');
  assert.deepEqual(follow.stdout.trim().split('\n'), all.stdout.trim().split('\n').slice(-1));
});
