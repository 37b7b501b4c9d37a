import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { projectDir } from '../../src/state/paths.js';
import { withProjectLock } from '../../src/state/lock.js';
import { ensureBuilt, project, tend, TWO_VMS } from './cli-harness.js';

before(() => ensureBuilt());

test('a mutating command exits 4 naming the holder when the project is locked (--no-wait and --lock-timeout)', async () => {
  const p = project({ 'tend.yaml': TWO_VMS });
  const projDir = projectDir(p.stateDir, 'demo', p.cwd);
  await withProjectLock(projDir, { command: 'tend watch', timeoutMs: 1000, wait: true }, async () => {
    const r = tend(['--no-wait', 'stop', 'web'], p);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`tend: project locked by pid ${process.pid} \\(tend watch\\) since \\d\\d:\\d\\d:\\d\\d`));
    const t0 = Date.now();
    const w = tend(['--lock-timeout', '1s', 'down'], p);
    assert.equal(w.code, 4, w.stderr);
    assert.match(w.stderr, /gave up after waiting/);
    assert.ok(Date.now() - t0 >= 900, 'it waited for the timeout');
    // read-only commands are not blocked by the lock
    assert.equal(tend(['plan'], p).code, 0);
  });
});

test('a bad --lock-timeout is a usage error', () => {
  const r = tend(['--lock-timeout', 'soon', 'down'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not a duration/);
});
