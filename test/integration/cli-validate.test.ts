import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, project, tend, ROOT, TWO_VMS } from './cli-harness.js';

before(() => ensureBuilt());

test('tend --version prints the package version', () => {
  const r = tend(['--version'], project({}));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('tend help plan shows the command help with examples', () => {
  const r = tend(['help', 'plan'], project({}));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Usage: tend plan/);
  assert.match(r.stdout, /--recreate/);
  assert.match(r.stdout, /Examples:\n\s+\$ tend plan/);
});

test('validate accepts a valid project and exits 0', () => {
  const r = tend(['validate'], project({ 'tend.yaml': TWO_VMS }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /valid: 2 VMs \(web, db\)/);
});

test('validate reports file:line:col on stderr and exits 3 on an invalid file', () => {
  const p = project({ 'tend.yaml': 'name: demo\nservices:\n  web:\n    image: debian:12\n    vm:\n      memory_mb: 2G\n' });
  const r = tend(['validate'], p);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`${join(p.cwd, 'tend.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: error: `));
  assert.match(r.stderr, /nothing was changed/);
});

test('validate --json prints {ok, diagnostics} on stdout', () => {
  const good = JSON.parse(tend(['validate', '--json'], project({ 'tend.yaml': TWO_VMS })).stdout) as {
    ok: boolean;
    diagnostics: unknown[];
  };
  assert.equal(good.ok, true);
  const p = project({ 'tend.yaml': 'name: demo\nservices:\n  web:\n    image: debian:12\n    vm:\n      memory_mb: 2G\n' });
  const r = tend(['validate', '--json'], p);
  assert.equal(r.code, 3);
  const bad = JSON.parse(r.stdout) as { ok: boolean; diagnostics: { file: string; line: number; column: number; message: string }[] };
  assert.equal(bad.ok, false);
  assert.ok(bad.diagnostics.length >= 1);
  assert.equal(bad.diagnostics[0].line, 6);
  assert.equal(bad.diagnostics[0].file, join(p.cwd, 'tend.yaml'));
});

test('no project file: a clear usage error, exit 2', () => {
  const r = tend(['validate'], project({}));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no project file/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});

test('an unknown command is a usage error (exit 2)', () => {
  const r = tend(['frobnicate'], project({}));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command/);
});
