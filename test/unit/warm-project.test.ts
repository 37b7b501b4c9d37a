/**
 * The project-wide `warm` (issue 15 §2: "opt-in per VM or project"): a top-level `warm` in every
 * dialect is the default of each VM of the file without its own; `tend up --warm` is the same
 * default from the command line, over the file's (and `tend watch --warm` keeps it across saves); a
 * VM's own `warm` (false included) wins. The
 * examples of docs/warm.md ("For a whole project") are loaded as they are written there, and a
 * wrong value is an error at its line and column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject, type LoadOptions } from '../../src/load/project.js';
import { convergeCommand } from '../../src/cli/commands/converge.js';
import { planCommand, renderPlan } from '../../src/cli/commands/plan.js';
import { watchCommand } from '../../src/cli/commands/watch.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { MemoryBackend } from '../helpers/memory-backend.js';

async function load(file: string, text: string, opts: LoadOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tend-warm-project-'));
  try {
    writeFileSync(join(dir, file), text);
    return await loadProject([join(dir, file)], { cwd: dir, env: { HOME: dir }, ...opts });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const errors = (r: Awaited<ReturnType<typeof load>>) => r.diagnostics.filter((d) => d.severity === 'error');
const warmOf = (r: Awaited<ReturnType<typeof load>>) => Object.fromEntries((r.project?.vms ?? []).map((v) => [v.name, v.warm ?? false]));

/** The fenced examples of docs/warm.md's "For a whole project" section: [file name, text]. */
function docExamples(): [string, string][] {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'warm.md'), 'utf8');
  const start = doc.indexOf('### For a whole project');
  assert.ok(start >= 0, 'docs/warm.md has the section');
  const end = doc.slice(start + 4).search(/\n#{2,3} /);
  const section = doc.slice(start, end < 0 ? undefined : start + 4 + end);
  const out: [string, string][] = [];
  for (const m of section.matchAll(/```(?:yaml|kdl)\n([\s\S]*?)```/g)) {
    const text = m[1]!;
    const name = /(tend\.yaml|VMFile\.kdl|vms\.yml)/.exec(text.split('\n')[0]!)?.[1];
    assert.ok(name, `the example names its file on its first line: ${text.split('\n')[0]}`);
    out.push([name, text]);
    if (name === 'tend.yaml') out.push(['holos.yaml', text]);
  }
  return out;
}

test("docs/warm.md's project-wide examples: every VM warm but the one that says warm: false", async () => {
  const examples = docExamples();
  assert.deepEqual([...new Set(examples.map(([f]) => f))].sort(), ['VMFile.kdl', 'holos.yaml', 'tend.yaml', 'vms.yml']);
  for (const [file, text] of examples) {
    const r = await load(file, text);
    assert.deepEqual(errors(r), [], file);
    assert.deepEqual(warmOf(r), { api: true, scratch: false }, file);
    // without the top-level line, nothing is warm
    const cold = await load(file, text.replace(/^warm (#true|true)$|^warm: true$/m, ''));
    assert.deepEqual(errors(cold), [], file);
    assert.deepEqual(warmOf(cold), { api: false, scratch: false }, `${file} without the top-level warm`);
  }
});

test('a wrong top-level warm is an error at its line and column, in every dialect', async () => {
  const cases: [string, string, number, number][] = [
    ['tend.yaml', 'name: p\nwarm: sometimes\nservices:\n  web:\n    image: debian:12\n', 2, 7],
    ['holos.yaml', 'name: p\nwarm: 1\nservices:\n  web:\n    image: debian:12\n', 2, 7],
    ['VMFile.kdl', 'warm "yes please"\nvm "web" {\n  image "debian:12"\n}\n', 1, 6],
    ['vms.yml', 'warm: sometimes\nvms:\n  web:\n    source: { kind: cloud_image, url: https://example.org/d.qcow2 }\n', 1, 7],
  ];
  for (const [file, text, line, column] of cases) {
    const r = await load(file, text);
    assert.equal(r.project, null, `${file}: no project`);
    const e = errors(r).find((d) => /warm/.test(d.message));
    assert.ok(e, `${file}: an error about warm: ${JSON.stringify(r.diagnostics)}`);
    assert.deepEqual([e.line, e.column], [line, column], `${file}: ${e.message}`);
  }
  const twice = await load('VMFile.kdl', 'warm #true\nwarm #false\nvm "web" {\n  image "debian:12"\n}\n');
  assert.match(errors(twice)[0]?.message ?? '', /warm is set twice at the top level \(first on line 1\)/);
  assert.equal(errors(twice)[0]?.line, 2);
});

test('tend up --warm: the default over the file’s top level; a VM’s own warm: false still wins', async () => {
  const yaml = 'name: p\nwarm: false\nservices:\n  a:\n    image: debian:12\n  b:\n    image: debian:12\n    warm: false\n';
  assert.deepEqual(warmOf(await load('tend.yaml', yaml)), { a: false, b: false });
  assert.deepEqual(warmOf(await load('tend.yaml', yaml, { warm: true })), { a: true, b: false });
  const kdl = 'vm "a" {\n  image "debian:12"\n}\nvm "b" {\n  image "debian:12"\n  warm #false\n}\n';
  assert.deepEqual(warmOf(await load('VMFile.kdl', kdl, { warm: true })), { a: true, b: false });

  // through the command: the VMs `tend up --warm` creates are warm ones
  const cwd = mkdtempSync(join(tmpdir(), 'tend-warm-up-'));
  writeFileSync(join(cwd, 'tend.yaml'), yaml);
  const mem = new MemoryBackend();
  const clock = new ManualClock();
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-warm-up-state-'));
  const r = await convergeCommand({
    cwd,
    stateDir,
    backend: mem,
    guest: mem,
    clock,
    wait: false,
    warm: true,
  });
  assert.equal(r.ok, true);
  assert.equal(mem.vms.get('a')?.applied?.warm, true);
  assert.equal(mem.vms.get('b')?.applied?.warm, undefined);
  // `tend plan --warm` plans what `tend up --warm` did: nothing left; a plain plan says warm goes
  const g = { cwd, stateDir, backend: mem, guest: mem, clock, wait: false };
  assert.deepEqual(
    (await planCommand({ ...g, recreate: false, prune: false, warm: true })).entries.map((e) => [e.vm, e.action, e.notes.join()]),
    [
      ['a', 'none', ''],
      ['b', 'none', ''],
    ],
  );
  assert.match(renderPlan(await planCommand({ ...g, recreate: false, prune: false })), /a +none +applied live: warm/);

  // `tend watch --warm` keeps what `tend up --warm` made, also when a save reloads the file
  const ac = new AbortController();
  let passes = 0;
  const watching = watchCommand({ ...g, warm: true, signal: ac.signal, resync: '0', debounce: '0', onPass: () => passes++ });
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    for (let i = 0; !cond(); i++) {
      if (i > 500) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
      clock.advance(10); // the debounce runs on the test's clock
    }
  };
  await until(() => passes >= 1, "watch's first pass");
  writeFileSync(join(cwd, 'tend.yaml'), yaml.replace('  a:\n    image: debian:12\n', '  a:\n    image: debian:12\n    vm: { vcpu: 2 }\n'));
  await until(() => mem.vms.get('a')?.applied?.cpus === 2, 'the saved edit applied');
  ac.abort();
  await watching;
  assert.equal(mem.vms.get('a')?.applied?.warm, true, 'watch --warm left a warm');
  assert.equal(mem.vms.get('b')?.applied?.warm, undefined);
});
