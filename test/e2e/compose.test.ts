/**
 * End to end, on the real Debian 12 guest image, compose semantics in as few boots as possible
 * (three guests booting together, then one recreate):
 *
 * - project "stack" (db + web): a named volume keeps a file across `up --recreate` (which
 *   replaces db's disk: a marker on the old root disk is gone); a host folder is readable in the
 *   guest and its `:ro` mount refuses writes; web (with its own raw user-data, to which tend
 *   adds the network's bootcmd) reaches db by name on the project network;
 *   a published port answers on 127.0.0.1; `tend volume ls` shows the volume; `down --volumes`
 *   deletes it;
 * - `tend run IMAGE -- hostname` prints the guest's host name; `tend exec NAME` reaches it by
 *   name alone; `tend down NAME --destroy` removes it and its run folder.
 */
import assert from 'node:assert/strict';
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, freePort, generateKey, runCli, tempProject, type TempProject } from './helpers.js';

async function cli(p: TempProject, args: string[]) {
  return runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 900_000 });
}

async function ok(p: TempProject, args: string[]): Promise<string> {
  const r = await cli(p, args);
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function qemuOf(needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (/qemu-system/.test(cmd.split('\0')[0] ?? '') && cmd.includes(needle)) out.push(e);
  }
  return out;
}

/** The first bytes a TCP server sends (sshd's banner), or the error. */
function banner(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (v: string): void => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(20_000, () => done(`timeout after ${JSON.stringify(got)}`));
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      if (got.includes('\n')) done(got);
    });
    s.on('error', (e) => done(`error: ${e.message}`));
  });
}

const stackYaml = (image: string, hostPort: number): string =>
  [
    'name: stack',
    'services:',
    '  db:',
    `    image: ${image}`,
    '    vm: { vcpu: 1, memory_mb: 512 }',
    '    volumes: ["data:/data", "./site:/site:ro"]',
    `    ports: ["127.0.0.1:${hostPort}:22"]`,
    '  web:',
    `    image: ${image}`,
    '    vm: { vcpu: 1, memory_mb: 512 }',
    // the user's own user-data, used as is: tend adds the project network's bootcmd next to it
    '    cloud_init: { user_data: ./web-user-data.yaml }',
    '    ssh: { user: tester, private_key: ./id_web }',
    'volumes:',
    '  data: { size: 1 }',
    '',
  ].join('\n');

test('compose semantics on real guests: volumes, host folders, project network, ports, tend run', { timeout: 2_400_000 }, async (t) => {
  const image = await findImage();
  const hostPort = await freePort();
  const p = await tempProject({ 'site/index.html': 'hello from the host\n' });
  t.after(() => p.cleanup());
  const webKey = await generateKey(join(p.dir, 'id_web'));
  await writeFile(
    join(p.dir, 'web-user-data.yaml'),
    [
      '#cloud-config',
      'users:',
      '  - name: tester',
      '    sudo: ALL=(ALL) NOPASSWD:ALL',
      '    shell: /bin/bash',
      `    ssh_authorized_keys: ["${webKey}"]`,
      'bootcmd: ["echo mine > /run/user-bootcmd"]',
      'runcmd: ["touch /var/tmp/user-runcmd"]',
      '',
    ].join('\n'),
  );
  const imageCopy = join(p.scratch, 'debian-copy.qcow2');
  await writeFile(join(p.dir, 'tend.yaml'), stackYaml(image, hostPort));
  const adhoc = await tempProject();
  t.after(() => adhoc.cleanup());

  // three guests boot together: the two of the project and the ad-hoc one
  const started = Date.now();
  const [, run] = await Promise.all([ok(p, ['up']), cli(adhoc, ['run', image, '--name', 'adhoc', '--memory', '512', '--', 'hostname'])]);
  t.diagnostic(`three guests ready in ${Math.round((Date.now() - started) / 1000)} s`);

  // tend run IMAGE -- hostname prints the guest's host name
  assert.equal(run.code, 0, `tend run: ${run.stdout}\n${run.stderr}`);
  assert.equal(run.stdout.trim().split('\n')[0], 'adhoc');
  const runFile = join(adhoc.stateDir, 'run', 'adhoc', 'tend.yaml');
  assert.ok(existsSync(runFile));
  // the run VM is reached by its name alone (no project file in adhoc's folder), then removed
  assert.equal((await ok(adhoc, ['exec', 'adhoc', '--', 'hostname'])).trim(), 'adhoc');
  await ok(adhoc, ['down', 'adhoc', '--destroy']);
  assert.deepEqual(await qemuOf(adhoc.stateDir), []);
  assert.equal(existsSync(join(adhoc.stateDir, 'run', 'adhoc')), false, 'down NAME --destroy removes the run folder');

  // a published port answers on 127.0.0.1 (the guest's sshd behind host port hostPort)
  assert.match(await banner(hostPort), /^SSH-2\.0-/);

  // the host folder is readable, and :ro refuses writes
  assert.equal((await ok(p, ['exec', 'db', '--', 'cat', '/site/index.html'])).trim(), 'hello from the host');
  const write = await cli(p, ['exec', 'db', '--', 'sudo', 'sh', '-c', 'echo x > /site/new']);
  assert.notEqual(write.code, 0, 'writing to a :ro host folder must fail');
  assert.match(write.stderr + write.stdout, /Read-only file system/);
  assert.equal(existsSync(join(p.dir, 'site', 'new')), false);

  // web's own user-data ran (its bootcmd and runcmd) next to tend's network bootcmd
  assert.equal((await ok(p, ['exec', 'web', '--', 'cat', '/run/user-bootcmd'])).trim(), 'mine');
  assert.equal((await cli(p, ['exec', 'web', '--', 'test', '-e', '/var/tmp/user-runcmd'])).code, 0);
  // web reaches db by service name on the project network (sshd on db's port 22)
  const hosts = await ok(p, ['exec', 'web', '--', 'getent', 'hosts', 'db']);
  assert.match(hosts, /^10\.213\.0\.\d+\s+db\b/m);
  const viaName = await ok(p, ['exec', 'web', '--', 'timeout', '10', 'bash', '-c', 'exec 3<>/dev/tcp/db/22; head -c 8 <&3']);
  assert.equal(viaName, 'SSH-2.0-');

  // the named volume is formatted and mounted; write a file to it and a marker on the root disk
  const mounts = await ok(p, ['exec', 'db', '--', 'findmnt', '-n', '-o', 'FSTYPE', '/data']);
  assert.equal(mounts.trim(), 'ext4');
  await ok(p, ['exec', 'db', '--', 'sudo', 'sh', '-c', 'echo kept > /data/file && echo old > /root/marker && sync']);
  const ls = await ok(p, ['volume', 'ls']);
  assert.match(ls, /^data\s+1G\s+\S+\s+db:\/data\s+created$/m);

  // `up --recreate` with a new image replaces db's disk; the volume keeps its file
  await copyFile(image, imageCopy);
  await writeFile(
    join(p.dir, 'tend.yaml'),
    stackYaml(image, hostPort).replace(`  db:\n    image: ${image}`, `  db:\n    image: ${imageCopy}`),
  );
  assert.match(await ok(p, ['plan']), /recreate/);
  await ok(p, ['up', '--recreate']);
  assert.equal((await cli(p, ['exec', 'db', '--', 'sudo', 'test', '-e', '/root/marker'])).code, 1, 'the root disk was replaced');
  assert.equal((await ok(p, ['exec', 'db', '--', 'cat', '/data/file'])).trim(), 'kept');

  // the volume is in use: volume rm refuses; down --volumes deletes it
  const refused = await cli(p, ['volume', 'rm', 'data']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /used by db/);
  await ok(p, ['down', '--volumes']);
  assert.deepEqual(await qemuOf(p.stateDir), []);
  const projects = await readdir(join(p.stateDir, 'projects'));
  for (const d of projects) assert.equal(existsSync(join(p.stateDir, 'projects', d, 'volumes', 'data.qcow2')), false);
});
