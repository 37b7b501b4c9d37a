/** `tend run`: the synthesized project file, and the command against the in-memory backend. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ManualClock } from '../helpers/manual-clock.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { parseRunArgs, renderRun, runCommand } from '../../src/cli/commands/run.js';
import { nameFromImage, parseMemory, runProjectYaml } from '../../src/cli/run-folder.js';
import { loadProject } from '../../src/load/project.js';
import { UsageError } from '../../schemas/errors.js';

test('names come from the image', () => {
  assert.equal(nameFromImage('debian:12'), 'debian-12');
  assert.equal(nameFromImage('./images/Base.qcow2'), 'base');
  assert.equal(nameFromImage('https://x.example/y/noble-server-cloudimg-amd64.img'), 'noble-server-cloudimg-amd64');
  assert.equal(parseMemory('2G'), 2048);
  assert.equal(parseMemory('512'), 512);
  assert.throws(() => parseMemory('lots'), UsageError);
});

test("the synthesized tend.yaml carries every flag and loads with tend's loader", () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-run-'));
  const yaml = runProjectYaml(
    {
      image: 'debian:12',
      cpus: 2,
      memory: '1G',
      ports: ['8080:80'],
      volumes: ['data:/data', './site:/srv:ro'],
      packages: ['nginx'],
      runcmd: ['echo hi'],
    },
    'web-1',
    cwd,
  );
  const doc = parse(yaml) as { name: string; services: Record<string, Record<string, unknown>>; volumes: Record<string, unknown> };
  assert.equal(doc.name, 'web-1');
  assert.deepEqual(doc.services['web-1'], {
    image: 'debian:12',
    vm: { vcpu: 2, memory_mb: 1024 },
    ports: ['8080:80'],
    volumes: ['data:/data', `${cwd}/site:/srv:ro`],
    cloud_init: { packages: ['nginx'], runcmd: ['echo hi'] },
    disposable: true,
    warm: true,
  });
  assert.deepEqual(doc.volumes, { data: {} });
  assert.throws(() => runProjectYaml({ image: 'debian:12', ports: ['99999'] }, 'x', cwd), /-p 99999/);
  assert.throws(() => runProjectYaml({ image: 'debian:12', volumes: ['nope'] }, 'x', cwd), /-v nope/);
});

test('tend run converges the ad-hoc VM, runs the command, and --rm removes it', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-run-cmd-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-run-state-'));
  const clock = new ManualClock(Date.parse('2026-01-01T10:00:00Z'));
  const mem = new MemoryBackend({ now: () => clock.now() });
  const r = await runCommand({
    cwd,
    stateDir,
    backend: mem,
    guest: mem,
    clock,
    wait: false,
    image: 'debian:12',
    name: 'adhoc',
    memory: 512,
  });
  assert.equal(r.ok, true);
  assert.equal(r.state, 'Ready');
  assert.equal(r.file, join(stateDir, 'run', 'adhoc', 'tend.yaml'));
  const loaded = await loadProject([r.file], { env: process.env, cwd });
  assert.equal(loaded.project?.vms[0].memory, 512);
  assert.equal(mem.vms.get('adhoc')?.power, 'running');
  // no project in cwd: the hints use the name alone
  assert.equal(r.byName, true);
  assert.match(renderRun(r), /^ {2}tend exec adhoc -- uname -a$/m);
  assert.match(renderRun(r), /^ {2}tend down adhoc --destroy$/m);
  assert.match(renderRun({ ...r, byName: false }), new RegExp(`tend -f ${r.file} exec adhoc -- `));
  const gone = await runCommand({
    cwd,
    stateDir,
    backend: mem,
    guest: mem,
    clock,
    wait: false,
    image: 'debian:12',
    name: 'adhoc',
    rm: true,
  });
  assert.equal(gone.removed, true);
  assert.equal(existsSync(r.file), false);
  assert.equal(mem.vms.get('adhoc')?.exists ?? false, false);
  await assert.rejects(runCommand({ cwd, stateDir, backend: mem, guest: mem, image: 'debian:12', name: 'Bad Name' }), UsageError);
});

test('run arguments: -v is a volume and -p a port for run; globals are skipped; -- starts the command', () => {
  assert.deepEqual(
    parseRunArgs([
      'debian:12',
      '-v',
      'data:/data',
      '--cpus',
      '2',
      '-p',
      '8080:80',
      '--json',
      '--memory=1G',
      '--pkg',
      'nginx',
      '--runcmd',
      'echo hi',
      '--name',
      'web',
      '--rm',
      '--',
      'ls',
      '-v',
    ]),
    {
      image: 'debian:12',
      volumes: ['data:/data'],
      cpus: 2,
      ports: ['8080:80'],
      memory: '1G',
      packages: ['nginx'],
      runcmd: ['echo hi'],
      name: 'web',
      rm: true,
      command: ['ls', '-v'],
    },
  );
  assert.deepEqual(parseRunArgs(['--state-dir', '/s', 'alpine']), { image: 'alpine' });
  assert.throws(() => parseRunArgs([]), /needs an image/);
  assert.throws(() => parseRunArgs(['a', 'b']), /put the command after --/);
  assert.throws(() => parseRunArgs(['a', '--bogus']), /unknown option --bogus/);
  assert.throws(() => parseRunArgs(['a', '--cpus', 'x']), /whole number/);
});
