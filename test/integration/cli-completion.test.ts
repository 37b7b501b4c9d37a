/**
 * Shell completion (issue 14 §3) with the built CLI: bash with `tend completion bash` sourced
 * completes commands, subcommands, option values, image names and the project's VM names (which
 * the script asks `tend __complete vms` for), also for `-p PROJECT` from elsewhere. zsh (its
 * completion system driven through zsh/zpty: test/integration/zsh-complete.zsh) and fish
 * (`complete -C`) load their scripts and complete the same words.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, ensureBuilt, project, tend } from './cli-harness.js';

before(() => ensureBuilt());

/** A bin folder with `tend` running the built CLI, as an installed tend would be on PATH. */
function binDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tend-bin-'));
  writeFileSync(join(dir, 'tend'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(dir, 'tend'), 0o755);
  return dir;
}

const ZSH_COMPLETE = fileURLToPath(new URL('./zsh-complete.zsh', import.meta.url));

/** The environment a shell completes in: `tend` on PATH, the project's state dir. */
const shellEnv = (stateDir: string, bin: string): NodeJS.ProcessEnv => ({
  ...process.env,
  PATH: `${bin}:${process.env.PATH ?? ''}`,
  TEND_STATE_DIR: stateDir,
});

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
  assert.match(fish.stdout, /__fish_seen_subcommand_from exec" -a "\(__tend_complete vms\)"/);
  const bad = tend(['completion', 'tcsh'], p);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /use bash, zsh or fish/);
});

/** The project the zsh and fish tests complete from, the folder next to it, and `tend` on PATH. */
function shop(): { cwd: string; stateDir: string; elsewhere: string; bin: string } {
  const p = project({
    'tend.yaml': 'name: shop\nservices:\n  web:\n    image: debian:12\n  worker:\n    image: debian:12\n  db:\n    image: debian:12\n',
  });
  return { ...p, elsewhere: mkdtempSync(join(tmpdir(), 'tend-elsewhere-')), bin: binDir() };
}

test('zsh: the script loads after compinit without a word on stderr, and TAB completes commands, VM and image names', () => {
  const p = shop();
  const env = shellEnv(p.stateDir, p.bin);
  const load = spawnSync('zsh', ['-f', '-c', 'autoload -U compinit && compinit -u -D && source <(tend completion zsh)'], {
    cwd: p.cwd,
    encoding: 'utf8',
    env,
  });
  assert.equal(load.status, 0, load.stderr);
  assert.equal(load.stderr, '', 'the script loads without errors');
  // saved as _tend in a folder, as docs/cli.md says for $fpath
  const script = join(p.elsewhere, '_tend');
  writeFileSync(script, tend(['completion', 'zsh'], p).stdout);
  /** the matches zsh's completion system offers for `line` (TAB at its end), the script sourced or found in $fpath */
  const c = (line: string, cwd = p.cwd, how: 'source' | 'fpath' = 'source'): string[] => {
    const where = how === 'source' ? script : p.elsewhere;
    const r = spawnSync('zsh', ['-f', ZSH_COMPLETE, how, where, line], { cwd, encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(r.status, 0, `zsh completion of "${line}" (exit 4: the script did not load, 5: no answer):\n${r.stdout}\n${r.stderr}`);
    return r.stdout
      .split('\n')
      .flatMap((l) => (l.startsWith('<<TEND-HIT>>') ? [l.slice('<<TEND-HIT>>'.length)] : []))
      .sort();
  };
  assert.deepEqual(c('tend exec '), ['db', 'web', 'worker']);
  assert.deepEqual(c('tend ssh w'), ['web', 'worker']);
  assert.deepEqual(c('tend --json status d'), ['db']);
  assert.deepEqual(c(`tend -p ${p.cwd} logs `, p.elsewhere), ['db', 'web', 'worker']);
  assert.deepEqual(c('tend sto'), ['stop']);
  assert.deepEqual(c('tend volume '), ['inspect', 'list', 'ls', 'rm']);
  assert.deepEqual(c('tend pull debian:1'), ['debian:12', 'debian:13']);
  assert.deepEqual(c('tend ps -o y'), ['yaml']);
  // installed in $fpath: compinit autoloads the file at the first TAB, which completes too
  assert.deepEqual(c('tend exec ', p.cwd, 'fpath'), ['db', 'web', 'worker']);
  assert.deepEqual(c('tend sto', p.cwd, 'fpath'), ['stop']);
});

test('fish: the script loads without a word on stderr, and `complete -C` completes commands, VM and image names', () => {
  const p = shop();
  const env = shellEnv(p.stateDir, p.bin);
  const script = join(p.elsewhere, 'tend.fish');
  writeFileSync(script, tend(['completion', 'fish'], p).stdout);
  const load = spawnSync('fish', ['--no-config', '-c', 'tend completion fish | source'], { cwd: p.cwd, encoding: 'utf8', env });
  assert.equal(load.status, 0, load.stderr);
  assert.equal(load.stderr, '', 'the script loads without errors');
  /** what fish offers for `line`: its documented non-interactive `complete -C` */
  const c = (line: string, cwd = p.cwd): string[] => {
    const r = spawnSync('fish', ['--no-config', '-c', `source ${script}; and complete -C '${line}'`], { cwd, encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', r.stderr);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0]!)
      .sort();
  };
  assert.deepEqual(c('tend exec '), ['db', 'web', 'worker']);
  assert.deepEqual(c('tend ssh w'), ['web', 'worker']);
  assert.deepEqual(c('tend --json status d'), ['db']);
  // from elsewhere with -p: the named project's VMs (the script passes -p on to tend __complete)
  assert.deepEqual(c(`tend -p ${p.cwd} logs `, p.elsewhere), ['db', 'web', 'worker']);
  assert.deepEqual(c('tend exec ', p.elsewhere), [], 'no project here, no run VMs: nothing');
  assert.deepEqual(c('tend sto'), ['stop']);
  assert.deepEqual(c('tend volume '), ['inspect', 'list', 'ls', 'rm']);
  assert.deepEqual(c('tend pull debian:1'), ['debian:12', 'debian:13']);
  assert.deepEqual(c('tend ps -o y'), ['yaml']);
});
