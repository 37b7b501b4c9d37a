/** `--help` of every command shows the global options and the exit codes; `run --help` its own options and examples. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, project, tend } from './cli-harness.js';
import { namesOf, REGISTRY } from '../../src/cli/registry.js';

before(() => ensureBuilt());

test('every command --help lists the global options and the exit codes', () => {
  const p = project({});
  for (const entry of REGISTRY) {
    const [name] = namesOf(entry.term);
    if (name === 'run') continue;
    const r = tend([name, '--help'], p);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /Global Options:[\s\S]*-p, --project <project>[\s\S]*--state-dir <dir>/, name);
    assert.match(r.stdout, /Exit codes: 0 done, 1 something is still wrong, 2 usage/, name);
  }
});

test('run --help shows its own options and examples', () => {
  const r = tend(['run', '--help'], project({}));
  assert.equal(r.code, 0, r.stderr);
  for (const flag of ['--cpus N', '-m, --memory SIZE', '-p, --publish', '-v, --volume SPEC', '--pkg NAME', '--rm', '-- CMD'])
    assert.ok(r.stdout.includes(flag), flag);
  assert.match(r.stdout, /Examples:\n {2}\$ tend run debian:12\n/);
  assert.match(r.stdout, /Exit codes:/);
});
