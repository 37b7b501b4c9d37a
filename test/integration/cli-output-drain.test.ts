/**
 * Output through a pipe whose reader is slow is never cut: the CLI waits for stdout to drain
 * before it exits (a pipe holds 64 KiB; process.exit drops what is still queued).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, test } from 'node:test';
import { CLI, ensureBuilt, project } from './cli-harness.js';

before(() => ensureBuilt());

test('`tend plan --json | slow-reader` receives the whole document (> 64 KiB)', () => {
  const services = Array.from({ length: 1500 }, (_, i) => `  vm-${i}:\n    image: debian:12\n`).join('');
  const p = project({ 'tend.yaml': `name: big\nservices:\n${services}` });
  const env: NodeJS.ProcessEnv = { ...process.env, TEND_STATE_DIR: p.stateDir, TEND_CLI: CLI, NODE: process.execPath };
  delete env.NODE_OPTIONS;
  // the slow reader starts reading 3 s after tend has written everything it had
  const r = spawnSync('sh', ['-c', '"$NODE" "$TEND_CLI" plan --json | { sleep 3; cat; }; exit "${PIPESTATUS:-0}"'], {
    cwd: p.cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.length > 65_536, `only ${r.stdout.length} bytes arrived`);
  assert.doesNotThrow(() => JSON.parse(r.stdout), `the JSON is whole (${r.stdout.length} bytes arrived)`);
});

test('a reader that leaves early (`| head -3`) ends nothing in error: no stack trace, the exit code stands', () => {
  const p = project({ 'tend.yaml': 'name: pipe\nservices:\n  a:\n    image: debian:12\n' });
  const env: NodeJS.ProcessEnv = { ...process.env, TEND_STATE_DIR: p.stateDir, TEND_CLI: CLI, NODE: process.execPath };
  delete env.NODE_OPTIONS;
  for (const args of ['plan --help', 'plan --json', 'validate']) {
    // bash: PIPESTATUS[0] is tend's own exit code; `head -c 1` closes the pipe after one byte
    const r = spawnSync('bash', ['-c', `"$NODE" "$TEND_CLI" ${args} | head -c 1 >/dev/null; exit "\${PIPESTATUS[0]}"`], {
      cwd: p.cwd,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `${args}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled 'error' event|at .*\.js:\d+/, args);
  }
});
