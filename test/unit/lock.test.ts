import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockError } from '../../schemas/errors.js';
import { claimPath, holderPath, lockPath, readHolder, withProjectLock } from '../../src/state/lock.js';

function tempProject(): string {
  return mkdtempSync(join(tmpdir(), 'tend-lock-'));
}

/** A pid that certainly belongs to no process now: a child that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('a second holder is refused with --no-wait, and the error names pid, command and time', async () => {
  const dir = tempProject();
  try {
    await withProjectLock(dir, { command: 'tend watch', timeoutMs: 1000, wait: true }, async () => {
      assert.equal(readHolder(dir)?.command, 'tend watch');
      await assert.rejects(
        withProjectLock(dir, { command: 'tend up', timeoutMs: 60_000, wait: false }, async () => 'never'),
        (e: unknown) => {
          assert.ok(e instanceof LockError);
          assert.equal(e.exitCode, 4);
          assert.match(e.message, new RegExp(`project locked by pid ${process.pid} \\(tend watch\\) since \\d\\d:\\d\\d:\\d\\d`));
          return true;
        },
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a waiting holder gets the lock once the first releases it', async () => {
  const dir = tempProject();
  try {
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = withProjectLock(dir, { command: 'tend up', timeoutMs: 1000, wait: true }, async () => {
      order.push('first in');
      await new Promise<void>((r) => (releaseFirst = r));
      order.push('first out');
    });
    await new Promise((r) => setTimeout(r, 50));
    const second = withProjectLock(dir, { command: 'tend stop web', timeoutMs: 5000, wait: true, pollMs: 20 }, async () => {
      order.push('second in');
      return readHolder(dir)?.command;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(order, ['first in'], 'the second must wait while the first holds the lock');
    releaseFirst();
    await first;
    assert.equal(await second, 'tend stop web');
    assert.deepEqual(order, ['first in', 'first out', 'second in']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('waiting gives up after the timeout with a LockError naming the holder', async () => {
  const dir = tempProject();
  try {
    await withProjectLock(dir, { command: 'tend converge', timeoutMs: 1000, wait: true }, async () => {
      const t0 = Date.now();
      await assert.rejects(
        withProjectLock(dir, { command: 'tend down', timeoutMs: 300, wait: true, pollMs: 50 }, async () => 'never'),
        (e: unknown) => e instanceof LockError && /tend converge/.test(e.message) && /gave up/.test(e.message),
      );
      const waited = Date.now() - t0;
      assert.ok(waited >= 250 && waited < 3000, `waited ${waited} ms`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock left by a dead process is taken over at once', async () => {
  const dir = tempProject();
  try {
    mkdirSync(lockPath(dir)); // what proper-lockfile leaves behind, fresh mtime
    writeFileSync(holderPath(dir), JSON.stringify({ pid: deadPid(), command: 'tend watch', since: new Date().toISOString() }));
    const got = await withProjectLock(dir, { command: 'tend up', timeoutMs: 60_000, wait: false }, async () => readHolder(dir));
    assert.equal(got?.pid, process.pid);
    assert.equal(got?.command, 'tend up');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lock is released when the function throws', async () => {
  const dir = tempProject();
  try {
    await assert.rejects(
      withProjectLock(dir, { command: 'tend up', timeoutMs: 1000, wait: true }, async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(existsSync(lockPath(dir)), false);
    assert.equal(existsSync(holderPath(dir)), false);
    const again = await withProjectLock(dir, { command: 'tend up', timeoutMs: 1000, wait: false }, async () => 'again');
    assert.equal(again, 'again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('another live process holding the lock blocks us (cross-process)', async () => {
  const dir = tempProject();
  try {
    mkdirSync(lockPath(dir));
    // pid 1 is always alive: the lock must be respected, not taken over
    writeFileSync(holderPath(dir), JSON.stringify({ pid: 1, command: 'tend watch', since: '2026-01-01T19:42:03.000Z' }));
    await assert.rejects(
      withProjectLock(dir, { command: 'tend up', timeoutMs: 60_000, wait: false }, async () => 'never'),
      (e: unknown) => e instanceof LockError && /pid 1 \(tend watch\)/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock with no holder recorded, left by a crash between creating and recording it, is taken over at once and said so', async () => {
  const dir = tempProject();
  try {
    // the crash: the claim and the lock folder exist, the holder record never got written
    writeFileSync(claimPath(dir, deadPid()), '');
    mkdirSync(lockPath(dir));
    const notes: string[] = [];
    const t0 = Date.now();
    const got = await withProjectLock(dir, { command: 'tend up', timeoutMs: 60_000, wait: false, onNote: (m) => notes.push(m) }, async () =>
      readHolder(dir),
    );
    assert.ok(Date.now() - t0 < 2000, 'no wait for the 30 s staleness');
    assert.equal(got?.pid, process.pid);
    assert.match(notes.join('\n'), /took over a project lock with no holder recorded: its creator \(pid \d+\) is gone/);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('.claim-')),
      [],
      'no claim is left behind',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a holder-less lock with no claim is taken over once it is older than a moment (older tend, lost claim)', async () => {
  const dir = tempProject();
  try {
    mkdirSync(lockPath(dir));
    const old = new Date(Date.now() - 5000);
    utimesSync(lockPath(dir), old, old);
    const notes: string[] = [];
    const got = await withProjectLock(dir, { command: 'tend up', timeoutMs: 60_000, wait: false, onNote: (m) => notes.push(m) }, async () =>
      readHolder(dir),
    );
    assert.equal(got?.pid, process.pid);
    assert.match(notes.join('\n'), /no holder recorded: no process claims it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a holder-less lock whose claimant is alive is respected (it is about to record itself)', async () => {
  const dir = tempProject();
  try {
    writeFileSync(claimPath(dir, 1), '');
    mkdirSync(lockPath(dir));
    const old = new Date(Date.now() - 5000);
    utimesSync(lockPath(dir), old, old);
    await assert.rejects(
      withProjectLock(dir, { command: 'tend up', timeoutMs: 60_000, wait: false }, async () => 'never'),
      (e: unknown) => e instanceof LockError && /locked by another tend process/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
