import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJson, readJsonSync, writeJsonAtomic, type CorruptFile } from '../../src/state/atomic.js';
import { appendEvent, readEvents, eventsPath } from '../../src/state/events.js';
import { projectDir, socketPath, UNIX_SOCKET_PATH_MAX } from '../../src/state/paths.js';
import { validatePortRecord, validateStatusRecord } from '../../src/state/validators.generated.js';

test('atomic write leaves no temp file, and creates 0700 folders and 0600 files', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tend-state-'));
  try {
    const file = join(root, 'a', 'b', 'status.json');
    await writeJsonAtomic(file, { state: 'Ready', conditions: [], at: 1 });
    await writeJsonAtomic(file, { state: 'Stopped', conditions: [], at: 2 });
    assert.deepEqual(readdirSync(join(root, 'a', 'b')), ['status.json']);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'a')).mode & 0o777, 0o700);
    assert.equal(statSync(join(root, 'a', 'b')).mode & 0o777, 0o700);
    assert.deepEqual(await readJson(file, validateStatusRecord), { state: 'Stopped', conditions: [], at: 2 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a corrupt JSON file is reported through onCorrupt and read as missing, not thrown', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tend-state-'));
  try {
    const file = join(root, 'ports.json');
    writeFileSync(file, '{"ssh": 22');
    const seen: CorruptFile[] = [];
    assert.equal(await readJson(file, validatePortRecord, (c) => seen.push(c)), undefined);
    assert.equal(
      readJsonSync(file, validatePortRecord, (c) => seen.push(c)),
      undefined,
    );
    assert.equal(seen.length, 2);
    assert.equal(seen[0].path, file);
    assert.ok(seen[0].error.length > 0);
    assert.equal(await readJson(join(root, 'missing.json'), validatePortRecord, () => assert.fail('missing is not corrupt')), undefined);
    // valid JSON of the wrong shape is corrupt too, with what is wrong in the message
    writeFileSync(file, '{"ssh": 22}');
    assert.equal(await readJson(file, validatePortRecord, (c) => seen.push(c)), undefined);
    assert.match(seen[2].error, /unexpected content: \/ssh must be string/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('socket paths stay within the kernel limit for long state dirs, stable and distinct per VM', () => {
  const env = { XDG_RUNTIME_DIR: '/run/user/1000' };
  const longRoot = '/tmp/' + 'very-long-state-directory-name/'.repeat(5);
  const proj = projectDir(longRoot, 'my-project', '/home/me/src/my-project');
  const web = socketPath(proj, 'web', 'qmp', env);
  const db = socketPath(proj, 'db', 'qmp', env);
  const webSerial = socketPath(proj, 'web', 'serial', env);
  for (const p of [web, db, webSerial]) assert.ok(Buffer.byteLength(p) <= UNIX_SOCKET_PATH_MAX, `${p} is ${Buffer.byteLength(p)} bytes`);
  assert.equal(socketPath(proj, 'web', 'qmp', env), web, 'stable across calls');
  assert.equal(new Set([web, db, webSerial]).size, 3, 'distinct per VM and per socket');
  // a short state dir keeps the socket inside the VM's folder
  const short = socketPath(projectDir('/tmp/t', 'p', '/x'), 'web', 'qmp', env);
  assert.match(short, /^\/tmp\/t\/projects\/p-[0-9a-f]{8}\/vms\/web\/qmp\.sock$/);
});

test('events are appended as JSON lines (0600) and read back, skipping a corrupt line', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tend-events-'));
  try {
    await appendEvent(root, { time: '2026-01-01T10:00:00.000Z', type: 'Normal', reason: 'VmStarted', vm: 'web', message: 'started' });
    writeFileSync(eventsPath(root), 'not json\n', { flag: 'a' });
    await appendEvent(root, { time: '2026-01-01T10:01:00.000Z', type: 'Warning', reason: 'VmFailed', vm: 'db', message: 'boom' });
    assert.equal(statSync(eventsPath(root)).mode & 0o777, 0o600);
    const corrupt: CorruptFile[] = [];
    const all = await readEvents(root, { onCorrupt: (c) => corrupt.push(c) });
    assert.deepEqual(
      all.map((e) => e.reason),
      ['VmStarted', 'VmFailed'],
    );
    assert.equal(corrupt.length, 1);
    assert.deepEqual(
      (await readEvents(root, { vm: 'db' })).map((e) => e.message),
      ['boom'],
    );
    assert.deepEqual(
      (await readEvents(root, { sinceMs: Date.parse('2026-01-01T10:00:30Z') })).map((e) => e.vm),
      ['db'],
    );
    assert.deepEqual(await readEvents(join(root, 'none')), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
