/**
 * vmctl's `create` through the built CLI: it writes the run project `tend run` writes (same
 * builder) with vmctl's flags, checks it, and does not start the VM; `tend start NAME` starts it
 * (under the fake qemu-system-x86_64: QEMU runs, no guest answers SSH, so readiness times out).
 * vmctl's `--name NAME` works where tend takes a VM NAME (start, status, down here).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { pidAlive } from '../../src/pid.js';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };
const started: number[] = [];

before(() => ensureBuilt());
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

interface Ps {
  vms: { name: string; state: string; pid: number | null }[];
}

test('tend create prepares a run VM from vmctl flags without starting it; tend start NAME starts it', () => {
  const p = project({ 'k.pub': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnE0000000000000000000000000000000000000000 me@host\n' });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const c = tend(
    ['create', '--name', 'web', '--image', './base.qcow2', '--vcpus', '2', '--memory', '512', '--disk', '2', '--ssh-key', './k.pub'],
    p,
    env,
  );
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^web: Prepared \(.*run\/web\/tend\.yaml\)\n {2}start it: tend start web/);
  const file = join(p.stateDir, 'run', 'web', 'tend.yaml');
  const svc = (parse(readFileSync(file, 'utf8')) as { services: Record<string, Record<string, unknown>> }).services.web;
  assert.deepEqual(svc, {
    image: join(p.cwd, 'base.qcow2'),
    vm: { vcpu: 2, memory_mb: 512, disk_size: 2 },
    cloud_init: { user: 'vm', ssh_authorized_keys: [join(p.cwd, 'k.pub')] },
    disposable: true,
  });
  const before = JSON.parse(tend(['ps', 'web', '--json'], p, env).stdout) as Ps;
  assert.deepEqual(
    before.vms.map((v) => [v.name, v.pid]),
    [['web', null]],
    'create does not start it',
  );
  const again = tend(['create', '--name', 'web', '--image', './base.qcow2'], p, env);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /a run VM named web exists already/);

  // vmctl's --name: `tend start --name web` = `tend start web`; both forms must agree; one is needed
  const conflict = tend(['start', 'db', '--name', 'web'], p, env);
  assert.equal(conflict.code, 2);
  assert.match(conflict.stderr, /the VM is "db" or --name "web", not both/);
  const none = tend(['stop'], p, env);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /tend stop needs a VM name: tend stop NAME \(or --name NAME\)/);
  // with --name every word is the command (web is not running yet, so ssh says so)
  assert.match(tend(['ssh', '--name', 'web', '--', 'uptime'], p, env).stderr, /web is not running/);
  // start launches QEMU; the fake guest never answers SSH, so readiness gives up after 1 s
  tend(['start', '--name', 'web', '--ssh-timeout', '1s'], p, env);
  const ps = JSON.parse(tend(['ps', 'web', '--json'], p, env).stdout) as Ps;
  const pid = ps.vms[0]?.pid ?? null;
  assert.ok(pid !== null && pidAlive(pid), `QEMU runs after tend start: ${JSON.stringify(ps)}`);
  started.push(pid);
  const status = tend(['status', '--name', 'web'], p, env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`PID:\\s+${pid}`));
  const down = tend(['down', '--name', 'web', '--destroy'], p, env);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(existsSync(file), false);
});

test('tend create: --bridge is TAP networking, --cloud-init a user-data file used as is; bad input writes nothing', () => {
  const p = project({ 'user-data': '#cloud-config\npackages: [nginx]\n' });
  const c = tend(
    ['create', '--name', 'br', '--image-url', 'https://example.com/image.img', '--bridge', 'br0', '--cloud-init', 'user-data', '--json'],
    p,
    env,
  );
  assert.equal(c.code, 0, c.stderr);
  const r = JSON.parse(c.stdout) as { name: string; state: string; file: string };
  assert.equal(r.state, 'Prepared');
  const svc = (parse(readFileSync(r.file, 'utf8')) as { services: Record<string, Record<string, unknown>> }).services.br;
  assert.deepEqual(svc, {
    image: 'https://example.com/image.img',
    network: { mode: 'tap', bridge: 'br0' },
    cloud_init: { user_data: join(p.cwd, 'user-data') },
    disposable: true,
  });
  const missing = tend(['create', '--name', 'nope', '--image', './base.qcow2', '--cloud-init', 'absent.yaml'], p, env);
  assert.equal(missing.code, 3, missing.stdout);
  assert.match(missing.stderr, /error: the user-data file ".*absent\.yaml" does not exist/);
  assert.equal(existsSync(join(p.stateDir, 'run', 'nope')), false, 'a rejected create leaves no run folder');
  const noImage = tend(['create', '--name', 'x'], p, env);
  assert.equal(noImage.code, 2);
  assert.match(noImage.stderr, /--image PATH or --image-url URL/);
  const both = tend(['create', '--name', 'x', '--image', 'a', '--cloud-init', 'user-data', '--ssh-key', 'k.pub'], p, env);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /used as is/);
});
