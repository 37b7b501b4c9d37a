/**
 * `tend image prune` and a warm clone being made from the same template at the same moment
 * (issue 15 §2: prune removes only unused templates). The clone's disk is made under the
 * template's lock, which prune takes too before it removes one: a prune that started while the
 * clone's overlay was being written keeps the template, and the clone's disk is backed by a
 * template that is still there. The prune runs as its own process (the built CLI), so the lock
 * is proven across processes; qemu-img is slowed (a wrapper on PATH) so that the window is wide.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { createQemuBackend } from '../../src/qemu/backend.js';
import { projectDir, TEMPLATE_FILES, templateDir, templatesDir, vmFile } from '../../src/state/paths.js';
import { templateKey } from '../../src/qemu/template-key.js';
import { listTemplates, withTemplateLock, type TemplateRecord } from '../../src/qemu/templates.js';
import { hostAlias, writePin } from '../../src/ssh/known-hosts.js';
import { readInstanceId } from '../../src/state/instance-id.js';
import { pidAlive } from '../../src/pid.js';
import { CLI, ensureBuilt } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tend-prune-race-'));
after(() => rmSync(root, { recursive: true, force: true }));

const CREATE_SLEEP_S = 3;

test('a prune while a clone is being made keeps the template; the clone is backed by it', { timeout: 120_000 }, async () => {
  ensureBuilt();
  const realQemuImg = execFileSync('sh', ['-c', 'command -v qemu-img'], { encoding: 'utf8' }).trim();
  const base = join(root, 'base.qcow2');
  execFileSync(realQemuImg, ['create', '-q', '-f', 'qcow2', base, '64M']);
  // a qemu-img whose `create` takes a few seconds before it writes anything
  const wrap = join(root, 'bin');
  mkdirSync(wrap);
  writeFileSync(join(wrap, 'qemu-img'), `#!/bin/sh\nif [ "$1" = create ]; then sleep ${CREATE_SLEEP_S}; fi\nexec ${realQemuImg} "$@"\n`);
  chmodSync(join(wrap, 'qemu-img'), 0o755);

  const stateRoot = join(root, 'state');
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}` };
  const backend = createQemuBackend({ stateRoot, env });
  const draft = (name: string) => ({ name, image: { kind: 'path', ref: base }, accel: 'tcg', warm: true }) as VmDraft;
  const first = applyDefaults(draft('first'));
  const clone = applyDefaults(draft('clone'));
  // one VM per project: two user-network VMs would put a project on its project network (another key)
  const other: Project = { name: 'other', dir: join(root, 'o'), files: [], vms: [first], volumes: {} };
  const project: Project = { name: 'race', dir: join(root, 'p'), files: [], vms: [clone], volumes: {} };
  const pd = projectDir(stateRoot, project.name, project.dir);

  // `first` gets a plain disk (no template yet); what it records pending is the image's id
  await backend.prepare(other, first, { recreateDisk: false });
  const otherPd = projectDir(stateRoot, other.name, other.dir);
  const pending = JSON.parse(readFileSync(vmFile(otherPd, 'first', 'templatePending'), 'utf8')) as TemplateRecord['image'];
  // a template of `clone`'s key, as a capture leaves one: a frozen disk over the base, a record
  const key = templateKey(clone, pending.id, false);
  const tdir = templateDir(stateRoot, key);
  mkdirSync(tdir, { recursive: true });
  execFileSync(realQemuImg, ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(tdir, TEMPLATE_FILES.disk)]);
  writeFileSync(join(tdir, TEMPLATE_FILES.state), 'fake state');
  const record: TemplateRecord = {
    key,
    createdAt: Date.now(),
    from: { project: 'race', vm: 'first' },
    image: pending,
    qemuVersion: 'QEMU emulator version 7.2.0 (fake)',
    argv: [],
    stateBytes: 10,
    instanceId: 'i-first',
    hostname: 'first',
    user: 'tend',
    hostKeys: [],
    bootId: null,
    loginKey: false,
  };
  writeFileSync(join(tdir, TEMPLATE_FILES.record), JSON.stringify(record));

  // the clone's prepare, with the slow qemu-img (execa reads this process's PATH)
  const savedPath = process.env.PATH;
  process.env.PATH = `${wrap}:${savedPath ?? ''}`;
  let prune: { code: number | null; stdout: string; stderr: string; startedAt: number; endedAt: number } | undefined;
  try {
    const t0 = Date.now();
    const preparing = backend.prepare(project, clone, { recreateDisk: false });
    // once the clone holds the template's lock (its disk is being made), prune from another process
    const lock = join(templatesDir(stateRoot), `.${key}.lock`);
    while (!existsSync(lock)) {
      assert.ok(Date.now() - t0 < 30_000, 'the clone takes the template lock');
      await new Promise((r) => setTimeout(r, 20));
    }
    const startedAt = Date.now();
    const child = spawn(process.execPath, [CLI, '--json', 'image', 'prune'], {
      env: { ...process.env, TEND_STATE_DIR: stateRoot, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    prune = { code, stdout, stderr, startedAt, endedAt: Date.now() };
    await preparing;
    assert.ok(
      prune.startedAt - t0 < CREATE_SLEEP_S * 1000,
      `prune was started while the clone's disk was still being made (${prune.startedAt - t0} ms)`,
    );
  } finally {
    process.env.PATH = savedPath;
  }

  assert.equal(prune.code, 0, prune.stderr);
  const r = JSON.parse(prune.stdout) as { removed: { key: string }[]; kept: { key: string; usedBy: string[] }[] };
  assert.deepEqual(r.removed, [], 'prune removed nothing');
  assert.deepEqual(
    r.kept.map((t) => [t.key, t.usedBy.length]),
    [[key, 1]],
    'it kept the template, used by the clone',
  );
  assert.ok(existsSync(join(tdir, TEMPLATE_FILES.disk)), "the template's disk is there");
  const info = JSON.parse(
    execFileSync(realQemuImg, ['info', '-U', '--output=json', vmFile(pd, 'clone', 'disk')], { encoding: 'utf8' }),
  ) as {
    'backing-filename'?: string;
  };
  assert.equal(info['backing-filename'], join(tdir, TEMPLATE_FILES.disk), "the clone's disk is backed by the template's");
  assert.ok(existsSync(vmFile(pd, 'clone', 'clone')), 'and is a clone waiting for its first start');

  // with the clone gone, the next prune removes the template (and leaves its lock folder alone)
  rmSync(vmFile(pd, 'clone', 'disk'));
  const again = JSON.parse(
    execFileSync(process.execPath, [CLI, '--json', 'image', 'prune'], {
      env: { ...process.env, TEND_STATE_DIR: stateRoot, NODE_OPTIONS: '' },
      encoding: 'utf8',
    }),
  ) as { removed: { key: string }[] };
  assert.deepEqual(
    again.removed.map((t) => t.key),
    [key],
  );
  assert.equal(existsSync(tdir), false);
});

test('prune removes what a killed template capture left, and waits for a capture under way', { timeout: 120_000 }, async () => {
  ensureBuilt();
  const base = join(root, 'base2.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  const stateRoot = join(root, 'state2');
  const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}` };
  const backend = createQemuBackend({ stateRoot, env });
  const src = applyDefaults({ name: 'src', image: { kind: 'path', ref: base }, accel: 'tcg', warm: true } as VmDraft);
  const project: Project = { name: 'cap', dir: join(root, 'cap'), files: [], vms: [src], volumes: {} };
  const pd = projectDir(stateRoot, project.name, project.dir);
  await backend.prepare(project, src, { recreateDisk: false });
  const pending = JSON.parse(readFileSync(vmFile(pd, 'src', 'templatePending'), 'utf8')) as TemplateRecord['image'];
  const key = templateKey(src, pending.id, false);
  const { pid } = await backend.start(project, src);
  try {
    await writePin(vmFile(pd, 'src', 'knownHosts'), {
      instanceId: await readInstanceId(pd, 'src'),
      alias: hostAlias(project.name, 'src'),
      keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTheTest'],
    });
    // what a capture SIGKILLed mid-way leaves: its folder with a frozen disk and memory state
    const left = join(templatesDir(stateRoot), `.tmp-${key}-0badc0de`);
    mkdirSync(left, { recursive: true });
    writeFileSync(join(left, TEMPLATE_FILES.disk), Buffer.alloc(1 << 20, 1));
    writeFileSync(join(left, TEMPLATE_FILES.state), Buffer.alloc(1 << 20, 2));
    const tmps = () => readdirSync(templatesDir(stateRoot)).filter((f) => f.startsWith('.tmp-'));

    let prune: Promise<{ code: number | null; stdout: string; stderr: string }> | undefined;
    let capture: Promise<void> | undefined;
    // hold the template's lock a while (as a capture under way does): the source's first Ready
    // (its capture) and a prune from another process both wait for it
    await withTemplateLock(stateRoot, key, async () => {
      capture = backend.markReady!(project, 'src', true);
      const child = spawn(process.execPath, [CLI, '--json', 'image', 'prune'], {
        env: { ...process.env, TEND_STATE_DIR: stateRoot, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      prune = new Promise((r) => child.on('close', (code) => r({ code, stdout, stderr })));
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(child.exitCode, null, 'prune waits while the lock is held');
      assert.deepEqual(tmps(), [basename(left)], 'the capture makes no folder before it holds the lock; the left one is there');
      assert.deepEqual(await listTemplates(stateRoot), [], 'no template yet');
    });
    await capture;
    const r = await prune!;
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { unfinished: { path: string; bytes: number }[]; removed: { key: string }[] };
    assert.deepEqual(
      out.unfinished.map((u) => u.path),
      [left],
      'prune removed the folder the killed capture left',
    );
    assert.ok(out.unfinished[0]!.bytes >= 2 << 20, `and says how much it held (${out.unfinished[0]!.bytes} bytes)`);
    assert.equal(existsSync(left), false);
    assert.deepEqual(tmps(), [], 'no capture folder left');
    // the capture under way finished: its template was made (no disk is backed by it, so a prune
    // that took the lock after the capture removed it as unused)
    assert.deepEqual(
      [...(await listTemplates(stateRoot)).map((t) => t.key), ...out.removed.map((t) => t.key)],
      [key],
      'the capture made its template',
    );
    // the human line
    const again = spawnSync(process.execPath, [CLI, 'image', 'prune'], {
      env: { ...process.env, TEND_STATE_DIR: stateRoot, NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    assert.doesNotMatch(again.stdout, /did not finish/, 'nothing left to remove the second time');
    mkdirSync(left);
    writeFileSync(join(left, TEMPLATE_FILES.state), Buffer.alloc(4096, 2));
    const human = spawnSync(process.execPath, [CLI, 'image', 'prune'], {
      env: { ...process.env, TEND_STATE_DIR: stateRoot, NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    assert.match(
      human.stdout,
      new RegExp(`^removed \\.tmp-${key}-0badc0de, left by a template capture that did not finish \\(4\\.0 KiB\\)$`, 'm'),
    );
  } finally {
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
});
