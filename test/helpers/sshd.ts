/**
 * A real OpenSSH server on loopback for integration tests: own host key, a free port, a temp
 * authorized_keys holding a generated client key. The "guest" is this machine, so tests check
 * files under temp paths. `restart()` stops and starts the same server (same port, same host
 * key); `newHostKey()` replaces the host key (as a recreated guest would have).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { readSshBanner } from '../../src/ssh/ready.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export async function keygen(path: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tend-test', '-f', path], { stdin: 'ignore' });
  return (await readFile(`${path}.pub`, 'utf8')).trim();
}

export interface TestSshd {
  dir: string;
  host: string;
  port: number;
  user: string;
  /** private key the server accepts */
  key: string;
  /** a valid key the server does not accept */
  wrongKey: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** replace the server's host key (takes effect on the next start) */
  newHostKey(): Promise<void>;
  /** stop and delete everything */
  dispose(): Promise<void>;
}

/**
 * Starts sshd; `pathDirs` are prepended to the sessions' PATH (fake guest tools); `config` lines
 * are added to sshd_config. `users`: the client key is authorised for these users only (and the
 * current one), each with its own authorized_keys file; by default it is authorised for every user.
 * `sftpServer`: the sftp subsystem (default internal-sftp; a Debian guest runs /usr/lib/openssh/sftp-server).
 */
export async function startTestSshd(
  opts: { pathDirs?: string[]; config?: string[]; users?: string[]; sftpServer?: string } = {},
): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'tend-sshd-'));
  const port = await freePort();
  const key = join(dir, 'id_client');
  const wrongKey = join(dir, 'id_wrong');
  const hostKey = join(dir, 'host_ed25519');
  const pub = await keygen(key);
  await keygen(wrongKey);
  await keygen(hostKey);
  const path = [...(opts.pathDirs ?? []), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].join(':');
  const authorized = `environment="PATH=${path}" ${pub}\n`;
  await writeFile(join(dir, 'authorized_keys'), authorized, { mode: 0o600 });
  for (const u of opts.users ? [userInfo().username, ...opts.users] : [])
    await writeFile(join(dir, `authorized_keys.${u}`), authorized, { mode: 0o644 });
  // sshd reads a user's authorized_keys as that user: let other users reach their file (only by name)
  if (opts.users) await chmod(dir, 0o711);
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, opts.users ? 'authorized_keys.%u' : 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PermitUserEnvironment yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      `Subsystem sftp ${opts.sftpServer ?? 'internal-sftp'}`,
      'LogLevel ERROR',
      ...(opts.config ?? []),
      '',
    ].join('\n'),
  );
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => {});

  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const p = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = p;
    let log = '';
    p.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    for (let i = 0; i < 100; i++) {
      try {
        await readSshBanner('127.0.0.1', port, 1000);
        return;
      } catch {
        if (p.exitCode !== null) throw new Error(`sshd exited: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`sshd did not come up: ${log}`);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  };
  await start();
  return {
    dir,
    host: '127.0.0.1',
    port,
    user: userInfo().username,
    key,
    wrongKey,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    newHostKey: async () => {
      await rm(hostKey, { force: true });
      await rm(`${hostKey}.pub`, { force: true });
      await keygen(hostKey);
    },
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
