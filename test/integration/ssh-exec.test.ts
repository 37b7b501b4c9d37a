/**
 * sshExec and waitForSsh against a real OpenSSH server started by the test on loopback
 * (own host key, free port, temp authorized_keys). The server's sessions get a PATH with a
 * fake `cloud-init` so the cloud-init stage of waitForSsh is exercised too.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sshExec } from '../../src/ssh/exec.js';
import { waitForSsh } from '../../src/ssh/ready.js';
import { freePort, startTestSshd, type TestSshd } from '../helpers/sshd.js';
import { rejectsWith } from '../helpers/rejects.js';

let dir = '';
let port = 0;
let key = '';
let wrongKey = '';
let sshd: TestSshd;
const user = userInfo().username;
let ciCalls = '';
let ciMode = '';

const startSshd = (): Promise<void> => sshd.start();
const stopSshd = (): Promise<void> => sshd.stop();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tend-ssh-exec-'));
  const bin = join(dir, 'bin');
  await mkdir(bin);
  ciCalls = join(dir, 'ci-calls');
  ciMode = join(dir, 'ci-mode');
  // A fake cloud-init: `status --wait` behaves as ci-mode says; `status --long` prints a report.
  await writeFile(
    join(bin, 'cloud-init'),
    `#!/bin/sh
if [ "$2" = "--long" ]; then echo "status: error"; echo "errors:"; echo "  - fake locale step failed"; exit 2; fi
echo call >> ${ciCalls}
mode=$(cat ${ciMode} 2>/dev/null)
n=$(wc -l < ${ciCalls})
case "$mode" in
  ok) exit 0 ;;
  recoverable) exit 2 ;;
  drop-once) if [ "$n" -le 1 ]; then kill -9 $(ps -o ppid= -p $PPID); sleep 5; fi; exit 0 ;;
  *) exit 1 ;;
esac
`,
  );
  await chmod(join(bin, 'cloud-init'), 0o755);
  sshd = await startTestSshd({ pathDirs: [bin] });
  ({ port, key, wrongKey } = sshd);
});

after(async () => {
  await sshd.dispose();
  await rm(dir, { recursive: true, force: true });
});

const target = (): { host: string; port: number; user: string; privateKey: string } => ({ host: '127.0.0.1', port, user, privateKey: key });

describe('sshExec', () => {
  test('returns stdout and the exit code of the command', async () => {
    const res = await sshExec({ ...target(), command: 'echo hello; exit 3', timeoutMs: 20_000 });
    assert.equal(res.code, 3);
    assert.equal(res.stdout, 'hello\n');
    assert.equal(res.stderr, '');
  });

  test('keeps stderr separate and streams both as they arrive', async () => {
    const seenOut: string[] = [];
    const seenErr: string[] = [];
    const res = await sshExec({
      ...target(),
      command: 'echo to-out; echo to-err >&2; echo more-out',
      timeoutMs: 20_000,
      onStdout: (b) => seenOut.push(b.toString()),
      onStderr: (b) => seenErr.push(b.toString()),
    });
    assert.equal(res.code, 0);
    assert.equal(res.stdout, 'to-out\nmore-out\n');
    assert.equal(res.stderr, 'to-err\n');
    assert.equal(seenOut.join(''), res.stdout);
    assert.equal(seenErr.join(''), res.stderr);
  });

  test('a command killed by a signal has no exit status: that is a failure, not code 0', async () => {
    await assert.rejects(
      sshExec({ ...target(), command: 'kill -9 $$', timeoutMs: 20_000 }),
      rejectsWith('SshSessionLost', /killed by signal (SIG)?KILL/),
    );
  });

  test('a key the server does not accept fails with a clear login error naming user and key', async () => {
    await assert.rejects(
      sshExec({ ...target(), privateKey: wrongKey, command: 'true', timeoutMs: 20_000 }),
      rejectsWith('SshAuthFailed', new RegExp(`user ${user} with key ${wrongKey.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)),
    );
  });

  test('a missing key file is reported as such', async () => {
    await assert.rejects(sshExec({ ...target(), privateKey: join(dir, 'nope'), command: 'true' }), rejectsWith('SshKeyUnreadable', /nope/));
  });

  test('nothing listening: connection failure, not a hang', async () => {
    const closed = await freePort();
    await assert.rejects(
      sshExec({ ...target(), port: closed, command: 'true', timeoutMs: 10_000 }),
      rejectsWith('SshConnectFailed', /ECONNREFUSED/),
    );
  });

  test('timeoutMs bounds a command that never ends', async () => {
    const t0 = Date.now();
    await assert.rejects(sshExec({ ...target(), command: 'sleep 30', timeoutMs: 1500 }), rejectsWith('SshTimeout', /sleep 30/));
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('an aborted signal stops the command', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('user pressed ^C')), 500);
    await assert.rejects(sshExec({ ...target(), command: 'sleep 30', signal: ctl.signal }), /user pressed \^C/);
  });
});

describe('waitForSsh', () => {
  test('passes the banner and login stages against a running server', async () => {
    const stages: string[] = [];
    await waitForSsh({ ...target(), timeoutMs: 20_000, cloudInit: false, onStage: (s) => stages.push(s) });
    assert.deepEqual(stages, ['banner', 'login']);
  });

  test('waits for a server that is restarted, then exec works again', async () => {
    await stopSshd();
    await assert.rejects(sshExec({ ...target(), command: 'true', timeoutMs: 5000 }), rejectsWith('SshConnectFailed'));
    const waiting = waitForSsh({ ...target(), timeoutMs: 30_000, cloudInit: false, retryDelayMs: 200 });
    await new Promise((r) => setTimeout(r, 1500));
    await startSshd();
    await waiting;
    const res = await sshExec({ ...target(), command: 'echo back', timeoutMs: 20_000 });
    assert.equal(res.stdout, 'back\n');
  });

  test('banner seen but key refused: SshLoginFailed says what to check', async () => {
    await assert.rejects(
      waitForSsh({ ...target(), privateKey: wrongKey, timeoutMs: 3000, cloudInit: false, retryDelayMs: 500 }),
      rejectsWith(
        'SshLoginFailed',
        /SSH banner seen on 127\.0\.0\.1:\d+ but login refused for user .* does the image's cloud-init create that user/,
      ),
    );
  });

  test('a port that accepts TCP but never speaks SSH times out at the banner stage', async () => {
    const silent: Server = createServer((sock) => sock.end());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const a = silent.address();
    const silentPort = typeof a === 'object' && a ? a.port : 0;
    try {
      await assert.rejects(
        waitForSsh({ ...target(), port: silentPort, timeoutMs: 2000, cloudInit: false, retryDelayMs: 200 }),
        rejectsWith('SshBannerTimeout', /no SSH server answered on 127\.0\.0\.1:\d+/),
      );
    } finally {
      silent.close();
    }
  });

  test('cloud-init done: resolves after the cloud-init stage', async () => {
    await writeFile(ciMode, 'ok');
    await rm(ciCalls, { force: true });
    const stages: string[] = [];
    await waitForSsh({ ...target(), timeoutMs: 20_000, cloudInit: true, onStage: (s) => stages.push(s) });
    assert.deepEqual(stages, ['banner', 'login', 'cloud-init']);
  });

  test('cloud-init "done with recoverable errors" (exit 2) fails with the --long report', async () => {
    await writeFile(ciMode, 'recoverable');
    await assert.rejects(
      waitForSsh({ ...target(), timeoutMs: 20_000, cloudInit: true }),
      rejectsWith('CloudInitFailed', /recoverable errors[\s\S]*fake locale step failed/),
    );
  });

  test('a session dropped during the cloud-init wait is retried, not failed', async () => {
    await writeFile(ciMode, 'drop-once');
    await rm(ciCalls, { force: true });
    await waitForSsh({ ...target(), timeoutMs: 30_000, cloudInit: true, retryDelayMs: 200 });
    const calls = (await readFile(ciCalls, 'utf8')).trim().split('\n');
    assert.equal(calls.length, 2, 'cloud-init status --wait ran again after the drop');
  });
});
