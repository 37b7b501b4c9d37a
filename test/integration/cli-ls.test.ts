/**
 * The host-wide view (issue 14 §2) with the built CLI and VMs the real QEMU backend started
 * under the fake qemu-system-x86_64: `tend ls` lists every project's VMs from the state root's
 * project index; ps/status/down work from a subdirectory of the project (walk up) and with
 * `-p PROJECT` (a folder or a name) from anywhere; -o json|yaml|wide|name and -q.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { loadProject } from '../../src/load/project.js';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };
const started: number[] = [];

before(() => ensureBuilt());
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

interface LsRow {
  host: string;
  project: string;
  path: string | null;
  pathExists: boolean;
  name: string;
  state: string;
  pid: number | null;
  startedAt: string | null;
  memoryMiB: number | null;
}

const yaml = (name: string, vms: string[]): string =>
  `name: ${name}\nservices:\n` +
  vms
    .map((v) => `  ${v}:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n`)
    .join('');

/** A project folder in `stateDir` whose VMs the QEMU backend prepared (and started when `start`). */
async function withVms(stateDir: string, name: string, vms: string[], start: boolean): Promise<{ cwd: string; stateDir: string }> {
  const p = project({ 'tend.yaml': yaml(name, vms) });
  const q = { cwd: p.cwd, stateDir };
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const loaded = await loadProject([join(p.cwd, 'tend.yaml')], { cwd: p.cwd });
  assert.ok(loaded.project, JSON.stringify(loaded.diagnostics));
  const backend = createQemuBackend({ stateRoot: stateDir, env: { ...process.env, ...env } });
  for (const vm of loaded.project.vms) {
    await backend.prepare(loaded.project, vm, { recreateDisk: false });
    if (start) started.push((await backend.start(loaded.project, vm)).pid);
  }
  return q;
}

test('ls lists every project and VM; ps/status/down walk up from a subdirectory and take -p from anywhere', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-ls-state-'));
  const shop = await withVms(stateDir, 'shop', ['web', 'db'], true);
  const lab = await withVms(stateDir, 'lab', ['box'], false);
  const elsewhere = { cwd: mkdtempSync(join(tmpdir(), 'tend-ls-nowhere-')), stateDir };

  // before any command recorded them, the folders are listed with their paths unknown
  const early = JSON.parse(tend(['ls', '--json'], elsewhere, env).stdout) as { vms: LsRow[] };
  assert.deepEqual(early.vms.map((r) => [r.project, r.name, r.path]).sort(), [
    ['lab', 'box', null],
    ['shop', 'db', null],
    ['shop', 'web', null],
  ]);

  // a mutating command in a subdirectory finds the project above it, and records it
  const deep = { cwd: join(shop.cwd, 'src', 'lib'), stateDir };
  mkdirSync(deep.cwd, { recursive: true });
  const suspend = tend(['suspend', 'db'], deep, env);
  assert.equal(suspend.code, 0, suspend.stderr);
  const down = tend(['down'], lab, env);
  assert.equal(down.code, 0, down.stderr);

  const ls = JSON.parse(tend(['ls', '--json'], elsewhere, env).stdout) as { vms: LsRow[] };
  const row = (p: string, n: string): LsRow => ls.vms.find((r) => r.project === p && r.name === n)!;
  assert.equal(ls.vms.length, 3);
  assert.deepEqual(
    [row('shop', 'web').host, row('shop', 'web').path, row('shop', 'web').state, row('shop', 'web').pathExists],
    ['local', shop.cwd, 'running', true],
  );
  assert.equal(row('shop', 'db').state, 'paused');
  assert.equal(row('lab', 'box').state, 'stopped');
  assert.equal(row('lab', 'box').path, lab.cwd);
  assert.equal(row('shop', 'web').pid, started[0]);
  assert.match(row('shop', 'web').startedAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'RFC 3339');
  assert.equal(row('shop', 'web').memoryMiB, 256);

  const table = tend(['ls'], elsewhere, env);
  assert.match(table.stdout, /^HOST\s+PROJECT\s+NAME\s+STATE\s+READY\s+PORTS\s+AGE\s+PATH\n/);
  assert.match(table.stdout, new RegExp(`\\nlocal\\s+shop\\s+web\\s+running\\s+no\\s+-\\s+\\d+s\\s+${shop.cwd}\\n`));
  const wide = tend(['ls', '-o', 'wide'], elsewhere, env).stdout;
  assert.match(wide, /\bPID\b.*\bSTARTED\b/);
  assert.match(wide, new RegExp(`\\bweb\\s+running\\s+no\\s+1\\s+256MiB\\s.*\\s${started[0]}\\s`));
  assert.deepEqual(tend(['ls', '-q'], elsewhere, env).stdout.trim().split('\n').sort(), ['lab/box', 'shop/db', 'shop/web']);
  assert.deepEqual(tend(['ps', '--all', '-o', 'name'], elsewhere, env).stdout.trim().split('\n').sort(), [
    'lab/box',
    'shop/db',
    'shop/web',
  ]);
  const asYaml = parseYaml(tend(['ls', '-o', 'yaml'], elsewhere, env).stdout) as { vms: LsRow[] };
  assert.deepEqual(
    asYaml.vms,
    ls.vms.map((r) => ({ ...r, startedAt: asYaml.vms.find((y) => y.name === r.name && y.project === r.project)!.startedAt })),
  );

  // ps and status from the subdirectory; -p by name and by folder from anywhere
  assert.deepEqual(tend(['ps', '-q'], deep, env).stdout.trim().split('\n'), ['web', 'db']);
  assert.deepEqual(tend(['-p', 'shop', 'ps', '-q'], elsewhere, env).stdout.trim().split('\n'), ['web', 'db']);
  assert.deepEqual(tend(['ps', '-q', '-p', lab.cwd], elsewhere, env).stdout.trim().split('\n'), ['box']);
  const status = tend(['-p', 'shop', 'status', 'web'], elsewhere, env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`PID:\\s+${started[0]}`));
  const unknown = tend(['-p', 'shpo', 'ps'], elsewhere, env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /-p shpo: no project of that name: did you mean "shop"\?/);
  const none = tend(['ps'], elsewhere, env);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no project file in .* or any folder above it/);

  // the checkout moved away: its VMs are still listed, the path marked gone
  const moved = `${shop.cwd}-moved`;
  renameSync(shop.cwd, moved);
  try {
    const gone = JSON.parse(tend(['ls', '--json'], elsewhere, env).stdout) as { vms: LsRow[] };
    const web = gone.vms.find((r) => r.name === 'web')!;
    assert.deepEqual([web.state, web.pathExists], ['running', false]);
    assert.match(tend(['ls'], elsewhere, env).stdout, /\(gone\)/);
  } finally {
    renameSync(moved, shop.cwd);
  }

  // down -p NAME from anywhere stops that project's VMs
  const stop = tend(['-p', 'shop', 'down'], elsewhere, env);
  assert.equal(stop.code, 0, stop.stderr);
  const afterDown = JSON.parse(tend(['ls', '--json'], elsewhere, env).stdout) as { vms: LsRow[] };
  assert.deepEqual(
    afterDown.vms.map((r) => r.state),
    ['stopped', 'stopped', 'stopped'],
  );
});

test('top --json: CPU, memory and disk of a running VM from its QEMU process and overlay', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-top-state-'));
  const p = await withVms(stateDir, 'lab', ['box', 'idle'], true);
  const r = tend(['top', '--json', '--interval', '300ms'], p, env);
  assert.equal(r.code, 0, r.stderr);
  const top = JSON.parse(r.stdout) as {
    vms: { name: string; pid: number; cpuPercent: number; memoryBytes: number; diskBytes: number | null; netRxBytes: number | null }[];
  };
  assert.deepEqual(top.vms.map((v) => v.name).sort(), ['box', 'idle']);
  for (const v of top.vms) {
    assert.ok(started.includes(v.pid), `the QEMU process ${v.pid}`);
    assert.ok(v.memoryBytes > 1024 * 1024, `RSS of the (fake) QEMU: ${v.memoryBytes}`);
    assert.ok(v.cpuPercent >= 0);
    assert.ok(v.diskBytes !== null && v.diskBytes > 0, 'the overlay takes some space');
    assert.equal(v.netRxBytes, null, 'user-mode networking has no counters');
  }
  const text = tend(['stats', 'box', '--interval', '100ms'], p, env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^NAME\s+PID\s+CPU %\s+MEMORY\s+DISK\s+NET RX \/ TX\nbox\s+\d+\s+\d+\.\d\s+\d+(\.\d)?MiB\s+\S+\s+-$/m);
});
