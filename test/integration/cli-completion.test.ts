/**
 * Shell completion (issue 14 §3) with the built CLI: bash with `tend completion bash` sourced
 * completes commands, subcommands, option values, image names and the project's VM names (which
 * the script asks `tend __complete vms` for), also for `-p PROJECT` from elsewhere.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ensureBuilt, project, tend } from './cli-harness.js';

before(() => ensureBuilt());

/** A bin folder with `tend` running the built CLI, as an installed tend would be on PATH. */
function binDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tend-bin-'));
  writeFileSync(join(dir, 'tend'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(dir, 'tend'), 0o755);
  return dir;
}

/** COMPREPLY after bash's completion function ran on `line` (the last word is completed). */
function complete(line: string[], cwd: string, stateDir: string, bin: string): string[] {
  const words = line.map((w) => `'${w}'`).join(' ');
  const script = `source <(tend completion bash) || exit 9
COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _tend; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, TEND_STATE_DIR: stateDir },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'the script runs without errors');
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('bash completion completes VM names, image names, commands, subcommands and option values', () => {
  const p = project({
    'tend.yaml': 'name: shop\nservices:\n  web:\n    image: debian:12\n  worker:\n    image: debian:12\n  db:\n    image: debian:12\n',
  });
  const bin = binDir();
  const c = (line: string[], cwd = p.cwd): string[] => complete(line, cwd, p.stateDir, bin);
  assert.deepEqual(c(['tend', 'exec', '']), ['db', 'web', 'worker']);
  assert.deepEqual(c(['tend', 'ssh', 'w']), ['web', 'worker']);
  assert.deepEqual(c(['tend', '--json', 'status', 'd']), ['db']);
  // from elsewhere with -p: the named project's VMs
  const elsewhere = mkdtempSync(join(tmpdir(), 'tend-elsewhere-'));
  assert.deepEqual(c(['tend', '-p', p.cwd, 'logs', ''], elsewhere), ['db', 'web', 'worker']);
  assert.deepEqual(c(['tend', 'exec', ''], elsewhere), [], 'no project here, no run VMs: nothing');
  assert.deepEqual(c(['tend', 'pull', 'debian:1']), ['debian:12', 'debian:13']);
  assert.deepEqual(c(['tend', 'init', '--image', 'ubuntu:n']), ['ubuntu:noble']);
  assert.deepEqual(c(['tend', 'init', '--format', '']), ['kdl', 'vms', 'yaml']);
  assert.deepEqual(c(['tend', 'ps', '-o', 'y']), ['yaml']);
  assert.deepEqual(c(['tend', 'sto']), ['stop']);
  assert.deepEqual(c(['tend', 'volume', '']), ['inspect', 'list', 'ls', 'rm']);
  assert.ok(c(['tend', 'ps', '--']).includes('--all'));
  assert.ok(c(['tend', 'ps', '--']).includes('--state-dir'), 'global options too');
  assert.ok(!c(['tend', '']).includes('__complete'), 'the helper command is not offered');
});

test('zsh and fish scripts are generated from the same tree; an unknown shell is a usage error', () => {
  const p = project({});
  const zsh = tend(['completion', 'zsh'], p);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^#compdef tend\n/);
  assert.match(zsh.stdout, /bashcompinit/);
  assert.match(zsh.stdout, /complete -o default -F _tend tend/);
  const fish = tend(['completion', 'fish'], p);
  assert.equal(fish.code, 0, fish.stderr);
  assert.match(fish.stdout, /complete -c tend -n "not __fish_seen_subcommand_from [^"]*\bls\b[^"]*" -a/);
  assert.match(fish.stdout, /__fish_seen_subcommand_from exec" -a "\(tend __complete vms/);
  const bad = tend(['completion', 'tcsh'], p);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /use bash, zsh or fish/);
});
