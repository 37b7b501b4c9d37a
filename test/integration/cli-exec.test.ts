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
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  // the sftp server a Debian guest runs (package openssh-sftp-server), for `tend cp`
  sshd = await startFakeGuest(work, { users: [other], sftpServer: '/usr/lib/openssh/sftp-server' });
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
  await rm(`${otherHome}-ro`, { recursive: true, force: true });
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

test('-it on a real terminal (script(1) gives tend one): the guest sees its size, reads keystrokes, the terminal is restored', () => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...p.env, TEND_STATE_DIR: p.stateDir, TERM: 'xterm' };
  delete env.NODE_OPTIONS;
  const inner = [process.execPath, CLI, 'exec', '-it', 'web0', '--', 'sh', '-c', 'stty size; read line; echo "got $line"; exit 6']
    .map((w) => `'${w}'`)
    .join(' ');
  // stty cols/rows set the size tend reads; after tend, `stty -a` shows whether raw mode was undone
  const shell = `stty rows 33 cols 101; ${inner}; echo "rc=$?"; stty -a | grep -o -- '-\\?icanon' | head -1`;
  const r = spawnSync('script', ['-qec', shell, '/dev/null'], { cwd: p.cwd, env, input: 'typed\n', encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /33 101/, "the pseudo-terminal has tend's size");
  assert.match(r.stdout, /got typed/);
  assert.match(r.stdout, /rc=6/);
  assert.match(r.stdout, /\r?\nicanon\r?\n/, 'canonical mode is back after tend exits');
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

/** The real OpenSSH client with config `file` (nothing from ~/.ssh). */
function sshWith(file: string, host: string, command: string): Run {
  const r = spawnSync('ssh', ['-F', file, '-o', 'BatchMode=yes', host, command], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ssh-config: the real ssh client reaches the VM by its alias with the block, checking the pinned host key', async () => {
  const r = run(['ssh-config'], p);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Host tend-ex-web0$/m);
  assert.match(r.stdout, /^ {2}HostName 127\.0\.0\.1$/m);
  assert.match(r.stdout, /^ {2}StrictHostKeyChecking yes$/m);
  assert.doesNotMatch(r.stdout, /not pinned/);
  const json = JSON.parse(run(['--json', 'ssh-config', 'web0'], p).stdout) as {
    hosts: { host: string; port: number; user: string; pinned: boolean; knownHostsFile: string }[];
  };
  assert.equal(json.hosts.length, 1);
  assert.equal(json.hosts[0]?.user, sshd.user);
  assert.equal(json.hosts[0]?.pinned, true);
  assert.match(r.stdout, new RegExp(`^ {2}Port ${json.hosts[0]?.port}$`, 'm'));
  const cfg = join(work, 'ssh_config');
  writeFileSync(cfg, r.stdout);
  const id = sshWith(cfg, 'tend-ex-web0', 'id -un');
  assert.equal(id.code, 0, id.stderr);
  assert.equal(id.stdout, `${sshd.user}\n`);

  // another host key on the same disk: ssh refuses it with the generated block
  const hostKey = join(sshd.dir, 'host_ed25519');
  const saved = [readFileSync(hostKey), readFileSync(`${hostKey}.pub`)] as const;
  await sshd.newHostKey();
  await sshd.restart();
  try {
    const refused = sshWith(cfg, 'tend-ex-web0', 'true');
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /Host key verification failed|HOST IDENTIFICATION HAS CHANGED/);
  } finally {
    writeFileSync(hostKey, saved[0], { mode: 0o600 });
    writeFileSync(`${hostKey}.pub`, saved[1]);
    await sshd.restart();
  }
  assert.equal(sshWith(cfg, 'tend-ex-web0', 'true').code, 0, 'the pinned key again');
});

test('ssh-config --append FILE: a section of its own, written once, the rest of the file kept', () => {
  const inc = join(work, 'ssh', 'tend.conf');
  mkdirSync(dirname(inc));
  writeFileSync(inc, 'Host mine\n  Port 2222\n');
  const first = run(['ssh-config', '--append', inc], p);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /1 host of project ex written/);
  assert.match(first.stderr, /add `Include .*tend\.conf` at its top/);
  const text = readFileSync(inc, 'utf8');
  assert.match(
    text,
    /^Host mine\n {2}Port 2222\n\n# >>> tend ssh-config ex >>>\n[\s\S]*^Host tend-ex-web0$[\s\S]*# <<< tend ssh-config ex <<<\n$/m,
  );
  const again = run(['ssh-config', '--append', inc], p);
  assert.match(again.stdout, /unchanged/);
  assert.equal(readFileSync(inc, 'utf8'), text, 'idempotent');
  assert.equal(statSync(inc).mode & 0o777, 0o600);
  const id = sshWith(inc, 'tend-ex-web0', 'id -un');
  assert.equal(id.code, 0, id.stderr);
  assert.equal(id.stdout, `${sshd.user}\n`);
});

/** A folder tree on the host: files with modes, a sub-folder, an empty folder, a link. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'a.txt'), 'alpha\n', { mode: 0o640 });
  writeFileSync(join(root, 'sub', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  writeFileSync(join(root, 'sub', 'deeper', 'big.bin'), Buffer.alloc(300_000, 7));
  symlinkSync('a.txt', join(root, 'link'));
  chmodSync(join(root, 'a.txt'), 0o640);
  chmodSync(join(root, 'sub', 'run.sh'), 0o755);
}

/** path → "kind mode content-or-target" for every entry under `root` (a comparable picture of a tree). */
function picture(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p2 = join(dir, name);
      const r2 = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p2);
      const mode = (st.mode & 0o777).toString(8);
      if (st.isSymbolicLink()) out[r2] = `link ${readlinkSync(p2)}`;
      else if (st.isDirectory()) {
        out[r2] = `dir ${mode}`;
        walk(p2, r2);
      } else out[r2] = `file ${mode} ${readFileSync(p2).toString('base64').slice(0, 40)} ${st.size}`;
    }
  };
  walk(root, '');
  return out;
}

test('cp: folders (recursive, modes, links) and files both ways over SFTP, cp -r landing rules', () => {
  const tree = join(work, 'tree');
  makeTree(tree);
  // the "guest" is this machine: guest paths are host paths under work/guest
  const guest = join(work, 'guest');
  mkdirSync(guest);
  const into = run(['cp', tree, `web0:${guest}/`], p);
  assert.equal(into.code, 0, into.stderr);
  assert.match(into.stdout, new RegExp(`copied 3 files, 1 link \\(.* KiB\\) to web0:${guest}/tree`));
  assert.deepEqual(picture(join(guest, 'tree')), picture(tree), 'the folder lands inside the existing one, same tree');
  // onto a path that does not exist: it becomes that path; SRC/. copies the content
  assert.equal(run(['cp', tree, `web0:${guest}/renamed`], p).code, 0);
  assert.deepEqual(picture(join(guest, 'renamed')), picture(tree));
  mkdirSync(join(guest, 'content'));
  assert.equal(run(['cp', `${tree}/.`, `web0:${guest}/content`], p).code, 0);
  assert.deepEqual(picture(join(guest, 'content')), picture(tree));
  // a file: into a folder under its name, or to a new name
  assert.equal(run(['cp', join(tree, 'sub', 'run.sh'), `web0:${guest}`], p).code, 0);
  assert.equal(readFileSync(join(guest, 'run.sh'), 'utf8'), '#!/bin/sh\necho ran\n');
  assert.equal(statSync(join(guest, 'run.sh')).mode & 0o777, 0o755);
  assert.equal(run(['cp', join(tree, 'a.txt'), `web0:${guest}/b.txt`], p).code, 0);
  assert.equal(readFileSync(join(guest, 'b.txt'), 'utf8'), 'alpha\n');

  // back to the host
  const back = join(work, 'back');
  const down = run(['--json', 'cp', `web0:${guest}/tree`, back], p);
  assert.equal(down.code, 0, down.stderr);
  const j = JSON.parse(down.stdout) as { direction: string; files: number; links: number; dirs: number; bytes: number; target: string };
  assert.deepEqual(
    { direction: j.direction, files: j.files, links: j.links, dirs: j.dirs, bytes: j.bytes, target: j.target },
    { direction: 'from-vm', files: 3, links: 1, dirs: 4, bytes: 6 + 19 + 300_000, target: back },
  );
  assert.deepEqual(picture(back), picture(tree));
  assert.equal(run(['cp', `web0:${guest}/b.txt`, work], p).code, 0);
  assert.equal(readFileSync(join(work, 'b.txt'), 'utf8'), 'alpha\n');
});

test("cp: a relative guest path is in the login user's home (-u picks the user); errors are clear", () => {
  const file = join(work, 'note.txt');
  writeFileSync(file, 'for other\n');
  const up = run(['cp', '-u', other, file, 'web0:'], p);
  assert.equal(up.code, 0, up.stderr);
  const landed = join(otherHome, 'note.txt');
  assert.equal(readFileSync(landed, 'utf8'), 'for other\n');
  assert.equal(statSync(landed).uid, Number(execFileSync('id', ['-u', other], { encoding: 'utf8' }).trim()), 'written as that user');
  const got = run(['cp', '-u', other, 'web0:note.txt', join(work, 'note-back.txt')], p);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(readFileSync(join(work, 'note-back.txt'), 'utf8'), 'for other\n');

  const missing = run(['cp', join(work, 'nope'), 'web0:/tmp/'], p);
  assert.equal(missing.code, 5);
  assert.match(missing.stderr, /nope: no such file or folder/);
  const missingGuest = run(['cp', 'web0:/no/such/path', work], p);
  assert.equal(missingGuest.code, 5);
  assert.match(missingGuest.stderr, /web0:\/no\/such\/path: no such file or folder/);
  const neither = run(['cp', file, join(work, 'x')], p);
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /NAME:PATH/);
  const denied = run(['cp', '-u', other, file, 'web0:/root/x'], p);
  assert.equal(denied.code, 6);
  assert.match(denied.stderr, /cannot reach web0:\/root\/x: Permission denied/);
  // a folder the user can reach but not write: root's, under /tmp (work is root's 0700)
  const readOnly = `${otherHome}-ro`;
  mkdirSync(readOnly, { mode: 0o755 });
  const notWritable = run(['cp', '-u', other, file, `web0:${readOnly}/x`], p);
  assert.equal(notWritable.code, 6);
  assert.match(notWritable.stderr, /cannot write web0:.*-ro\/x: Permission denied/);
});

test('cp between two VMs: files and folders streamed through the host over SFTP, cp -r landing rules, -u on both', () => {
  // two VMs of one project, both "guests" this machine's loopback sshd (each with its own port and pin)
  const pair = chaosProject(sshd, 2, { name: 'pair' });
  try {
    const up = run(['up'], pair);
    assert.equal(up.code, 0, `up: ${up.stdout}\n${up.stderr}`);
    const tree = join(work, 'pair-tree');
    makeTree(tree);
    const dest = join(work, 'pair-dest');
    mkdirSync(dest);
    // a folder onto an existing folder: lands inside it under its own name, same tree (modes, links)
    const into = run(['--json', 'cp', `web0:${tree}`, `web1:${dest}/`], pair);
    assert.equal(into.code, 0, into.stderr);
    const j = JSON.parse(into.stdout) as Record<string, unknown>;
    assert.deepEqual(
      { vm: j.vm, toVm: j.toVm, direction: j.direction, files: j.files, links: j.links, dirs: j.dirs, bytes: j.bytes, target: j.target },
      {
        vm: 'web0',
        toVm: 'web1',
        direction: 'vm-to-vm',
        files: 3,
        links: 1,
        dirs: 4,
        bytes: 6 + 19 + 300_000,
        target: `web1:${dest}/pair-tree`,
      },
    );
    assert.deepEqual(picture(join(dest, 'pair-tree')), picture(tree));
    // the other way, onto a path that does not exist: it becomes that path
    assert.equal(run(['cp', `web1:${dest}/pair-tree`, `web0:${dest}/renamed`], pair).code, 0);
    assert.deepEqual(picture(join(dest, 'renamed')), picture(tree));
    // a file: into a folder under its name (mode kept), or to a new name; an existing file is overwritten
    const file = run(['cp', `web0:${tree}/sub/run.sh`, `web1:${dest}`], pair);
    assert.equal(file.code, 0, file.stderr);
    assert.match(file.stdout, new RegExp(`copied 1 file \\(19 B\\) to web1:${dest}/run\\.sh`));
    assert.equal(statSync(join(dest, 'run.sh')).mode & 0o777, 0o755);
    writeFileSync(join(dest, 'b.txt'), 'old content, longer than the new\n');
    assert.equal(run(['cp', `web0:${tree}/a.txt`, `web1:${dest}/b.txt`], pair).code, 0);
    assert.equal(readFileSync(join(dest, 'b.txt'), 'utf8'), 'alpha\n');
    // -u on both sides: relative paths are in that user's home, the copy belongs to that user
    writeFileSync(join(otherHome, 'from-web0.txt'), 'hello other\n');
    const as = run(['cp', '-u', other, 'web0:from-web0.txt', 'web1:to-web1.txt'], pair);
    assert.equal(as.code, 0, as.stderr);
    assert.equal(readFileSync(join(otherHome, 'to-web1.txt'), 'utf8'), 'hello other\n');
    assert.equal(statSync(join(otherHome, 'to-web1.txt')).uid, Number(execFileSync('id', ['-u', other], { encoding: 'utf8' }).trim()));
    // errors name the VM and path
    const missing = run(['cp', 'web0:/no/such/path', `web1:${dest}`], pair);
    assert.equal(missing.code, 5);
    assert.match(missing.stderr, /web0:\/no\/such\/path: no such file or folder/);
    const denied = run(['cp', '-u', other, 'web0:from-web0.txt', 'web1:/root/x'], pair);
    assert.equal(denied.code, 6);
    assert.match(denied.stderr, /web1:\/root\/x: Permission denied/);
  } finally {
    run(['down'], pair);
    killAll(pair);
  }
});

test('cp honours the pinned host key: another key on the same disk is refused, nothing copied', async () => {
  const hostKey = join(sshd.dir, 'host_ed25519');
  const saved = [readFileSync(hostKey), readFileSync(`${hostKey}.pub`)] as const;
  const file = join(work, 'secret.txt');
  writeFileSync(file, 'secret\n');
  await sshd.newHostKey();
  await sshd.restart();
  try {
    const r = run(['cp', file, `web0:${join(work, 'stolen.txt')}`], p);
    assert.equal(r.code, 6);
    assert.match(r.stderr, /SSH host key of web0 .* changed on the same disk/);
    assert.equal(existsSync(join(work, 'stolen.txt')), false);
  } finally {
    writeFileSync(hostKey, saved[0], { mode: 0o600 });
    writeFileSync(`${hostKey}.pub`, saved[1]);
    await sshd.restart();
  }
});
