/**
 * End to end, on the real Debian 12 guest image: provisioning as the last reconcile step, with
 * its layer cache. A file upload and a script run for real; a second converge runs nothing;
 * editing the third of four steps re-runs only the third and fourth; a failing step fails the
 * converge with a clear report, and the converge after the fix finishes; `tend provision` re-runs
 * every step over one SSH connection (counted by the guest's sshd). Then, on the same boot:
 * `exec` exit codes and -t, `cp` both ways, `ssh-config` with the system ssh client. The guest's
 * SSH host key is the one tend put in its seed (src/ssh/host-key.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, runCli, tempProject, type TempProject } from './helpers.js';
import { publicKeyOf } from '../../src/ssh/keys.js';

const tendYaml = (image: string, step4: string) =>
  [
    'name: prov',
    'services:',
    '  p:',
    `    image: ${image}`,
    '    vm: { vcpu: 1, memory_mb: 512 }',
    '    provision:',
    '      - shell: echo one >> ~/runs.log',
    '      - script: ./two.sh',
    '      - file: { source: ./conf.txt, destination: /etc/tend-conf.txt }',
    `      - shell: ${step4}`,
    '',
  ].join('\n');

async function cli(p: TempProject, args: string[]) {
  return runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 600_000 });
}

async function ok(p: TempProject, args: string[]): Promise<string> {
  const r = await cli(p, args);
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout + r.stderr;
}

const runs = async (p: TempProject) => (await ok(p, ['exec', 'p', '--', 'cat', 'runs.log'])).trim().split('\n');

test('provisioning on a real guest: runs, caches, re-runs from the changed step, reports a failure', { timeout: 1_200_000 }, async (t) => {
  const image = await findImage();
  const p = await tempProject({
    'tend.yaml': tendYaml(image, 'echo four >> ~/runs.log'),
    'two.sh': '#!/bin/sh\nset -e\necho two >> ~/runs.log\n',
    'conf.txt': 'version=1\n',
  });
  t.after(() => p.cleanup());

  await ok(p, ['up']);
  assert.deepEqual(await runs(p), ['one', 'two', 'four']);
  // its SSH host key is the one tend made with the disk and put in the seed (src/ssh/host-key.ts):
  // cloud-init generated none, its public half is readable as on any Debian, tend pinned that key
  const [projDir] = await readdir(join(p.stateDir, 'projects'));
  const vmState = join(p.stateDir, 'projects', projDir!, 'vms', 'p');
  const seeded = publicKeyOf(await readFile(join(vmState, 'ssh_host_ed25519_key'), 'utf8'), 'x').split(' ')[1]!;
  const guestKeys = (
    await ok(p, ['exec', 'p', '--', 'sh', '-c', 'cat /etc/ssh/ssh_host_*_key.pub; stat -c %a /etc/ssh/ssh_host_ed25519_key.pub'])
  )
    .trim()
    .split('\n');
  assert.deepEqual(
    guestKeys.map((k) => k.split(' ').slice(0, 2).join(' ')),
    [`ssh-ed25519 ${seeded}`, '644'],
  );
  assert.ok((await readFile(join(vmState, 'known_hosts'), 'utf8')).includes(seeded), 'the pinned key is the seeded one');
  assert.equal((await ok(p, ['exec', 'p', '--', 'cat', '/etc/tend-conf.txt'])).trim(), 'version=1');

  // Nothing changed: no step runs.
  await ok(p, ['up']);
  assert.deepEqual(await runs(p), ['one', 'two', 'four']);

  // The content of the third step's upload changes: the third and fourth run again.
  await writeFile(join(p.dir, 'conf.txt'), 'version=2\n');
  await ok(p, ['up']);
  assert.deepEqual(await runs(p), ['one', 'two', 'four', 'four']);
  assert.equal((await ok(p, ['exec', 'p', '--', 'cat', '/etc/tend-conf.txt'])).trim(), 'version=2');

  // A failing fourth step fails the converge and says which step, with what status and output.
  await writeFile(join(p.dir, 'tend.yaml'), tendYaml(image, '"echo broken-step >&2; exit 3"'));
  const failed = await cli(p, ['up']);
  assert.notEqual(failed.code, 0);
  const report = failed.stdout + failed.stderr;
  assert.match(report, /step 4\/4/);
  assert.match(report, /exit status 3/);
  assert.match(report, /broken-step/);

  // Fixed: only the fourth step runs.
  await writeFile(join(p.dir, 'tend.yaml'), tendYaml(image, 'echo fixed >> ~/runs.log'));
  await ok(p, ['up']);
  assert.deepEqual(await runs(p), ['one', 'two', 'four', 'four', 'fixed']);

  // `tend provision` re-runs every step, on ONE SSH connection, as the guest's sshd counts them
  // (issue 15 §3b: readiness, host-key check and the steps share it). A count leaves out the
  // connection of the `exec` that reads it (by its client port, from $SSH_CONNECTION).
  const accepted = async (): Promise<number> => {
    const count =
      'own=$(echo "$SSH_CONNECTION" | cut -d" " -f2); ' +
      'sudo -n journalctl -u ssh -o cat --no-pager | grep "Accepted publickey" | grep -vc " port $own "';
    const r = await cli(p, ['exec', 'p', '--', 'sh', '-c', count]);
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout.trim());
  };
  const before = await accepted();
  await ok(p, ['provision']);
  // since `before`: the connection of that first read, and tend provision's
  assert.equal((await accepted()) - before - 1, 1, 'tend provision opened one SSH connection');
  assert.deepEqual(await runs(p), ['one', 'two', 'four', 'four', 'fixed', 'one', 'two', 'fixed']);

  // On the same boot, how a user reaches the guest besides provisioning (issues 11, 14 §3):
  // exec's exit codes and -t, cp over the guest's own sftp-server, ssh-config with the system ssh.
  assert.equal((await cli(p, ['exec', 'p', '--', 'sh', '-c', 'exit 3'])).code, 3);
  assert.equal((await cli(p, ['exec', 'p', '--', 'no-such-command'])).code, 127);
  // password logins are off (tend's sshd drop-in, written before sshd first started)
  assert.match((await cli(p, ['exec', 'p', '--', 'sudo', '-n', '/usr/sbin/sshd', '-T'])).stdout, /^passwordauthentication no$/m);
  assert.match((await cli(p, ['exec', '-t', 'p', '--', 'tty'])).stdout, /^\/dev\/pts\/\d+\s*$/);
  await mkdir(join(p.dir, 'site', 'sub'), { recursive: true });
  await writeFile(join(p.dir, 'site', 'index.html'), 'hello\n');
  await writeFile(join(p.dir, 'site', 'sub', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  await ok(p, ['cp', './site', 'p:']);
  assert.equal((await cli(p, ['exec', 'p', '--', 'site/sub/run.sh'])).stdout.trim(), 'ran', 'copied with its mode');
  await ok(p, ['cp', 'p:site', './back']);
  assert.equal(await readFile(join(p.dir, 'back', 'index.html'), 'utf8'), 'hello\n');
  assert.equal((await stat(join(p.dir, 'back', 'sub', 'run.sh'))).mode & 0o777, 0o755);
  const cfg = join(p.dir, 'ssh_config');
  await writeFile(cfg, (await cli(p, ['ssh-config'])).stdout);
  const viaConfig = spawnSync('ssh', ['-F', cfg, '-o', 'BatchMode=yes', 'tend-prov-p', 'echo via-ssh-config'], { encoding: 'utf8' });
  assert.equal(viaConfig.status, 0, viaConfig.stderr);
  assert.equal(viaConfig.stdout, 'via-ssh-config\n');
  await ok(p, ['down', '--destroy']);
});
