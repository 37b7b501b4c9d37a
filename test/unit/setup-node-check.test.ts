/**
 * scripts/setup.sh refuses a Node older than 20.3 in its first second, before it installs
 * anything (issue 14 §5): run with a fake `node` first on PATH that prints an old version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');

/** A PATH whose `node` prints `version` (and an `npm` that would say if it were called). */
function fakeNode(version: string): { path: string; done: () => void } {
  const bin = mkdtempSync(join(tmpdir(), 'tend-fake-node-'));
  writeFileSync(join(bin, 'node'), `#!/bin/sh\necho ${version}\n`);
  writeFileSync(join(bin, 'npm'), `#!/bin/sh\necho "npm was called: $*" >&2\nexit 99\n`);
  chmodSync(join(bin, 'node'), 0o755);
  chmodSync(join(bin, 'npm'), 0o755);
  return { path: `${bin}:/usr/bin:/bin`, done: () => rmSync(bin, { recursive: true, force: true }) };
}

test('setup.sh with Node 18 on PATH fails at once, says what to install, installs nothing', () => {
  const fake = fakeNode('v18.19.0');
  try {
    const t0 = Date.now();
    const r = spawnSync('bash', [join(repo, 'scripts', 'setup.sh')], { encoding: 'utf8', env: { PATH: fake.path, HOME: tmpdir() } });
    const ms = Date.now() - t0;
    assert.notEqual(r.status, 0);
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.match(r.stderr, /tend needs Node\.js >= 20\.3, found v18\.19\.0/);
    assert.match(r.stderr, /NodeSource|nodejs\.org/);
    assert.doesNotMatch(r.stdout + r.stderr, /installing|npm was called|apt/i);
  } finally {
    fake.done();
  }
});

test('the Node check: 20.2 and garbage are refused, 20.3, 22 and 24 accepted', () => {
  for (const [version, ok] of [
    ['v20.2.0', false],
    ['v8.17.0', false],
    ['not a version', false],
    ['v20.3.0', true],
    ['v20.20.2', true],
    ['v22.1.0', true],
    ['v24.0.0', true],
  ] as const) {
    const fake = fakeNode(version);
    try {
      const r = spawnSync('bash', ['-c', '. scripts/deps.sh && tend_check_node'], {
        cwd: repo,
        encoding: 'utf8',
        env: { PATH: fake.path },
      });
      assert.equal(r.status === 0, ok, `${version}: ${r.stderr}`);
    } finally {
      fake.done();
    }
  }
});
