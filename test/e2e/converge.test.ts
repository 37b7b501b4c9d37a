/**
 * End to end, on the real Debian 12 guest image: `tend up` from a VMFile.kdl and from a
 * tend.yaml boots real guests whose cloud-init applied the seed tend generated; a memory edit
 * restarts the VM with its disk's contents kept; stop, start and destroy; no QEMU is left behind.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, runCli, tempProject, type TempProject } from './helpers.js';

const QEMU_CMDLINES = async (needle: string): Promise<string[]> => {
  const out: string[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (/qemu-system/.test(cmd.split('\0')[0] ?? '') && cmd.includes(needle)) out.push(cmd.split('\0').join(' '));
  }
  return out;
};

async function cli(p: TempProject, args: string[]) {
  const r = await runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 900_000 });
  return r;
}

async function ok(p: TempProject, args: string[]): Promise<string> {
  const r = await cli(p, args);
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

interface PsRow {
  name: string;
  state: string;
  memory: number;
}

async function ps(p: TempProject): Promise<PsRow[]> {
  return (JSON.parse(await ok(p, ['ps', '--json'])) as { vms: PsRow[] }).vms;
}

test('tend up boots real guests from VMFile.kdl and tend.yaml; edits, stop/start and destroy behave', { timeout: 1_800_000 }, async (t) => {
  const image = await findImage();
  const kdl = await tempProject({
    'VMFile.kdl': [
      'vm "kdlvm" {',
      `    image "${image}"`,
      '    vcpus 1',
      '    memory 512',
      '    cloud-init {',
      '        hostname "kdl-host"',
      '    }',
      '    ssh {',
      '        user "alice"',
      '    }',
      '}',
      '',
    ].join('\n'),
  });
  t.after(() => kdl.cleanup());
  const yamlText = (memory: number) =>
    [
      'name: e2e',
      'services:',
      '  yvm:',
      '    image: debian:12',
      '    vm:',
      '      vcpu: 1',
      `      memory_mb: ${memory}`,
      '    cloud_init:',
      '      hostname: yaml-host',
      '      user: bob',
      '',
    ].join('\n');
  const yml = await tempProject({ 'tend.yaml': yamlText(512) });
  t.after(() => yml.cleanup());

  // The YAML project names the catalog image: `tend image build` registers the image built from
  // Debian packages under that name (the build script's cache makes this a copy, not a rebuild).
  await ok(yml, ['image', 'build', 'debian:12']);

  // Both projects converge at once (independent projects, independent locks).
  const started = Date.now();
  await Promise.all([ok(kdl, ['up']), ok(yml, ['up'])]);
  t.diagnostic(`two guests SSH-ready in ${Math.round((Date.now() - started) / 1000)} s`);

  // cloud-init applied the hostname and created the user, with passwordless sudo.
  assert.equal((await ok(kdl, ['exec', 'kdlvm', '--', 'hostname'])).trim(), 'kdl-host');
  assert.equal((await ok(kdl, ['exec', 'kdlvm', '--', 'id', '-un'])).trim(), 'alice');
  assert.equal((await ok(yml, ['exec', 'yvm', '--', 'hostname'])).trim(), 'yaml-host');
  assert.equal((await ok(yml, ['exec', 'yvm', '--', 'id', '-un'])).trim(), 'bob');
  assert.equal((await ok(yml, ['exec', 'yvm', '--', 'sudo', '-n', 'cloud-init', 'status'])).includes('done'), true);
  // An exit status is passed through.
  assert.equal((await cli(yml, ['exec', 'yvm', '--', 'sh', '-c', 'exit 7'])).code, 7);

  // A second converge does nothing.
  const again = Date.now();
  await ok(kdl, ['up']);
  t.diagnostic(`converged converge took ${Date.now() - again} ms`);
  const plan = JSON.parse(await ok(kdl, ['plan', '--json'])) as { entries?: { action: string }[] } | { action: string }[];
  const entries = Array.isArray(plan) ? plan : (plan.entries ?? []);
  assert.deepEqual(
    entries.map((e) => e.action),
    ['none'],
  );

  // The KDL project is done: destroy it and check its QEMU is gone.
  await ok(kdl, ['down', '--destroy']);
  assert.deepEqual(await QEMU_CMDLINES(kdl.stateDir), []);

  // Memory edit → restart with the disk kept.
  await ok(yml, ['exec', 'yvm', '--', 'sh', '-c', 'echo kept > ~/marker && sync']);
  await writeFile(join(yml.dir, 'tend.yaml'), yamlText(768));
  const planned = await ok(yml, ['plan']);
  assert.match(planned, /restart/);
  assert.match(planned, /memory/);
  const [pid1] = await QEMU_CMDLINES(yml.stateDir);
  assert.ok(pid1);
  await ok(yml, ['up']);
  assert.equal((await ok(yml, ['exec', 'yvm', '--', 'cat', 'marker'])).trim(), 'kept');
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(await ok(yml, ['exec', 'yvm', '--', 'cat', '/proc/meminfo']))?.[1]);
  assert.ok(memKb > 600 * 1024 && memKb <= 768 * 1024, `guest sees ${memKb} kB after the edit`);
  const rows = await ps(yml);
  assert.equal(rows[0]?.memory, 768);

  // stop records an intent that converge honours... until start clears it.
  await ok(yml, ['stop', 'yvm']);
  assert.deepEqual(await QEMU_CMDLINES(yml.stateDir), []);
  assert.equal((await ps(yml))[0]?.state.toLowerCase(), 'stopped');
  await ok(yml, ['start', 'yvm']);
  assert.equal((await ok(yml, ['exec', 'yvm', '--', 'cat', 'marker'])).trim(), 'kept');

  // destroy: the VM's folder and process are gone.
  await ok(yml, ['destroy', 'yvm']);
  assert.deepEqual(await QEMU_CMDLINES(yml.stateDir), []);
  const projects = join(yml.stateDir, 'projects');
  const leftovers = existsSync(projects) ? await readdir(projects) : [];
  for (const p of leftovers) {
    const vms = join(projects, p, 'vms');
    assert.deepEqual(existsSync(vms) ? await readdir(vms) : [], [], 'no VM folder left after destroy');
  }
});
