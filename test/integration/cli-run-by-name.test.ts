/**
 * A `tend run` VM is reached by its name alone (src/cli/context.ts loadContext): the built CLI's
 * ps/status/stop/logs/down find `<state>/run/NAME/tend.yaml` when the working directory's project
 * does not know NAME; a project VM of the same name wins; an unknown name lists the run VMs;
 * `down NAME --destroy` removes the run folder. The run VM is started by the real QEMU backend
 * under the fake qemu-system-x86_64 (no guest, no SSH: these commands need none).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { pidAlive } from '../../src/pid.js';
import { loadProject } from '../../src/load/project.js';
import { projectDir, vmDir } from '../../src/state/paths.js';
import { ensureBuilt, project, tend } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const env: NodeJS.ProcessEnv = { PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '' };
const started: number[] = [];

before(() => ensureBuilt());
after(() => {
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
});

interface Ps {
  project: string;
  vms: { name: string; state: string; pid: number | null }[];
}

/** Writes the run folder `tend run --name NAME` would, and starts its VM with the real backend. */
async function startRunVm(stateDir: string, name: string, image: string): Promise<{ dir: string; pid: number }> {
  const dir = join(stateDir, 'run', name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'tend.yaml');
  writeFileSync(
    file,
    `name: ${name}\nservices:\n  ${name}:\n    image: ${image}\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n    stop_grace_period: 1s\n    disposable: true\n`,
  );
  const loaded = await loadProject([file], { cwd: dir });
  assert.ok(loaded.project, JSON.stringify(loaded.diagnostics));
  const backend = createQemuBackend({ stateRoot: stateDir, env: { ...process.env, ...env } });
  await backend.prepare(loaded.project, loaded.project.vms[0], { recreateDisk: false });
  const { pid } = await backend.start(loaded.project, loaded.project.vms[0]);
  started.push(pid);
  return { dir, pid };
}

function baseImage(dir: string): string {
  const image = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G']);
  return image;
}

test('a run VM is found by name where no project file is: ps, status, stop, logs, down --destroy', async () => {
  const elsewhere = project({});
  const { dir, pid } = await startRunVm(elsewhere.stateDir, 'adhoc', baseImage(elsewhere.cwd));
  const runProjDir = projectDir(elsewhere.stateDir, 'adhoc', dir);

  const ps = tend(['ps', 'adhoc', '--json'], elsewhere, env);
  assert.equal(ps.code, 0, ps.stderr);
  const rows = (JSON.parse(ps.stdout) as Ps).vms;
  assert.deepEqual(
    rows.map((v) => [v.name, v.state, v.pid]),
    [['adhoc', 'running', pid]],
  );

  const status = tend(['status', 'adhoc'], elsewhere, env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`PID:\\s+${pid}`));
  assert.match(status.stdout, /Project:\s+adhoc/);

  const stop = tend(['stop', 'adhoc', '--timeout', '1'], elsewhere, env);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /^adhoc: Stopped/);
  // the stop went to the run project's event log, which `logs NAME` reads
  const logs = tend(['logs', 'adhoc'], elsewhere, env);
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /adhoc/);
  assert.match(logs.stdout, /Stopp/);
  // exec and ssh look the name up the same way (stopped now, so they say so instead of connecting)
  const exec = tend(['exec', 'adhoc', '--', 'true'], elsewhere, env);
  assert.equal(exec.code, 125, 'exec: tend failed before running the command (docker 125)');
  assert.match(exec.stderr, /adhoc is not running: `tend start adhoc` first/);
  // in a one-VM project, `tend ssh WORD` runs WORD on its VM, unless WORD is a run VM
  const oneVm = project({ 'tend.yaml': 'name: solo\nservices:\n  box:\n    image: debian:12\n' });
  const solo = { cwd: oneVm.cwd, stateDir: elsewhere.stateDir };
  assert.match(tend(['ssh', 'adhoc'], solo, env).stderr, /adhoc is not running/);
  assert.match(tend(['ssh', '--', 'uptime'], solo, env).stderr, /box is not running/);

  // --state-dir is where run VMs are looked up: another state folder has none
  const other = mkdtempSync(join(tmpdir(), 'tend-cli-other-state-'));
  const missing = tend(['--state-dir', other, 'status', 'adhoc'], elsewhere, env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no VM named "adhoc".*no project file in .*run VMs: none/);

  const down = tend(['down', 'adhoc', '--destroy'], elsewhere, env);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /adhoc: Destroyed/);
  assert.equal(existsSync(dir), false, 'the run folder is removed');
  assert.equal(existsSync(vmDir(runProjDir, 'adhoc')), false, 'the VM folder is deleted');
  const gone = tend(['ps', 'adhoc'], elsewhere, env);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /no VM named "adhoc".*run VMs: none/);
});

test('a project VM wins over a run VM of the same name; unknown names list the run VMs', async () => {
  const p = project({
    'tend.yaml':
      'name: demo\nservices:\n  adhoc:\n    image: ./base.qcow2\n    accel: tcg\n    vm: { vcpu: 1, memory_mb: 256 }\n  web:\n    image: ./base.qcow2\n    accel: tcg\n',
  });
  const image = baseImage(p.cwd);
  const run = await startRunVm(p.stateDir, 'adhoc', image);
  await startRunVm(p.stateDir, 'scratch', image);
  const empty = { cwd: mkdtempSync(join(tmpdir(), 'tend-cli-empty-')), stateDir: p.stateDir };

  // in the project: its own (never created) adhoc
  const inProject = JSON.parse(tend(['ps', 'adhoc', '--json'], p, env).stdout) as Ps;
  assert.equal(inProject.project, 'demo');
  assert.deepEqual(
    inProject.vms.map((v) => [v.name, v.state]),
    [['adhoc', 'not-created']],
  );
  assert.match(tend(['status', 'adhoc'], p, env).stdout, /Project:\s+demo/);
  // a name the project does not declare is still found among the run VMs
  assert.match(tend(['status', 'scratch'], p, env).stdout, /Project:\s+scratch/);
  // elsewhere: the run VM
  const outside = JSON.parse(tend(['ps', 'adhoc', '--json'], empty, env).stdout) as Ps;
  assert.equal(outside.project, 'adhoc');
  assert.deepEqual(
    outside.vms.map((v) => [v.name, v.state, v.pid]),
    [['adhoc', 'running', run.pid]],
  );

  // `down adhoc --destroy` in the project acts on the project's adhoc: the run VM keeps running
  const down = tend(['down', 'adhoc', '--destroy'], p, env);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(pidAlive(run.pid), 'the run VM is untouched');
  assert.ok(existsSync(run.dir), 'the run folder is kept');

  const unknown = tend(['status', 'nope'], p, env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no VM named "nope" in project "demo" \(its VMs: adhoc, web; run VMs: adhoc, scratch\)/);
  const typo = tend(['exec', 'scrach', '--', 'true'], p, env);
  assert.equal(typo.code, 125);
  assert.match(typo.stderr, /no VM named "scrach" in project "demo": did you mean "scratch"\?/);
  const noProject = tend(['logs', 'nope'], empty, env);
  assert.equal(noProject.code, 2);
  assert.match(noProject.stderr, /no VM named "nope" \(no project file in .*run VMs: adhoc, scratch\)/);
  // a project name and a run VM in one `down`: refused, nothing stopped
  const mixed = tend(['down', 'web', 'scratch'], p, env);
  assert.equal(mixed.code, 2);
  assert.match(mixed.stderr, /scratch is a `tend run` VM/);

  // `destroy NAME` deletes the run VM's disk but keeps its run folder (`start NAME` recreates it)
  const destroy = tend(['destroy', 'scratch'], p, env);
  assert.equal(destroy.code, 0, destroy.stderr);
  assert.ok(existsSync(join(p.stateDir, 'run', 'scratch', 'tend.yaml')));
  const destroyed = JSON.parse(tend(['ps', 'scratch', '--json'], p, env).stdout) as Ps;
  assert.deepEqual(
    destroyed.vms.map((v) => [v.name, v.state]),
    [['scratch', 'not-created']],
  );
});
