/**
 * The command registry (src/cli/registry.ts) repeats each command's help line so `tend --help`
 * need not load every command module: this keeps those lines equal to what the modules declare,
 * and checks that the command word found before parsing is the one commander runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, Help } from 'commander';
import { commandWord } from '../../src/cli/argv.js';
import { define } from '../../src/cli/main.js';
import { namesOf, REGISTRY } from '../../src/cli/registry.js';

test('every registry line matches its command module: names, aliases, arguments, options, description', async () => {
  const seen = new Set<string>();
  for (const entry of REGISTRY) {
    const { command } = await entry.load();
    const c = define(new Command('tend'), command, new AbortController().signal, () => undefined);
    assert.equal(new Help().subcommandTerm(c), entry.term, `${command.name}: term`);
    assert.equal(c.description(), entry.description, `${command.name}: description`);
    assert.deepEqual(namesOf(entry.term), [command.name, ...(command.aliases ?? [])]);
    for (const n of namesOf(entry.term)) {
      assert.ok(!seen.has(n), `${n} registered once`);
      seen.add(n);
    }
  }
});

test('commandWord finds the command past global options and their values, and after `help`', () => {
  const n = ['node', 'tend'];
  assert.equal(commandWord([...n, 'up']), 'up');
  assert.equal(commandWord([...n, '-f', 'up.yaml', '--json', 'plan', '--prune']), 'plan');
  assert.equal(commandWord([...n, '--state-dir', 'ps', 'status', 'web']), 'status');
  assert.equal(commandWord([...n, '--lock-timeout', '1m', '-v', 'down']), 'down');
  assert.equal(commandWord([...n, 'help', 'exec']), 'exec');
  assert.equal(commandWord([...n, '--help']), null);
  assert.equal(commandWord([...n]), null);
});
