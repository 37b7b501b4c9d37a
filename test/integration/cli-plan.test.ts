import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, project, tend, TWO_VMS } from './cli-harness.js';

before(() => ensureBuilt());

test('plan with nothing running: every VM is "create"', () => {
  const r = tend(['plan'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^VM\s+ACTION\s+CHANGES\/NOTES$/);
  const rows = lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2));
  assert.deepEqual(rows.sort(), [
    ['db', 'create'],
    ['web', 'create'],
  ]);
});

test('plan --json lists an entry per VM', () => {
  const r = tend(['plan', '--json'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { project: string; entries: { vm: string; action: string }[] };
  assert.equal(out.project, 'demo');
  assert.deepEqual(out.entries.map((e) => `${e.vm}:${e.action}`).sort(), ['db:create', 'web:create']);
});

test('plan on an invalid project acts on nothing and exits 3', () => {
  const r = tend(['plan'], project({ 'tend.yaml': 'name: demo\nservices:\n  web:\n    image: debian:12\n    vm:\n      memory_mb: 2G\n' }));
  assert.equal(r.code, 3);
  assert.match(r.stderr, /tend\.yaml:6:\d+: error/);
});

test('an unknown VM name is a clear error with a suggestion', () => {
  const r = tend(['plan', '--name', 'wbe'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no VM named "wbe" in project "demo": did you mean "web"\?/);
  const s = tend(['status', 'nosuch'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(s.code, 2);
  assert.match(s.stderr, /no VM named "nosuch"/);
});

test('with --json an error is one JSON object on stderr', () => {
  const r = tend(['--json', 'plan', '--name', 'wbe'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  const e = JSON.parse(r.stderr) as { error: { reason: string; message: string; exitCode: number } };
  assert.equal(e.error.reason, 'UnknownVm');
  assert.equal(e.error.exitCode, 2);
});
