/**
 * docs/cli.md has a section for every command of the CLI (issue 14 §6), so a new command cannot
 * ship undocumented: a `### NAME ...` heading per registered command, its aliases named, and no
 * section for a command that does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REGISTRY, namesOf } from '../../src/cli/registry.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'cli.md'), 'utf8');
/** `### ` headings with the text of their section (up to the next `##`/`###` heading). */
const sections = [...doc.matchAll(/^### (.+)\n([\s\S]*?)(?=^#{2,3} |$(?![\s\S]))/gm)].map((m) => ({ heading: m[1], body: m[2] }));

test('every registered command has its own section in docs/cli.md, with text', () => {
  assert.ok(REGISTRY.length > 20);
  const missing: string[] = [];
  for (const entry of REGISTRY) {
    const name = namesOf(entry.term)[0];
    const section = sections.find((s) => s.heading === name || s.heading.startsWith(`${name} `));
    if (!section) {
      missing.push(name);
      continue;
    }
    assert.ok(section.body.replace(/\s+/g, ' ').trim().length >= 40, `the section of ${name} has (almost) no text`);
  }
  assert.deepEqual(missing, [], `commands without a "### NAME" section in docs/cli.md`);
});

test('every alias is named in docs/cli.md', () => {
  for (const entry of REGISTRY) {
    const [name, ...aliases] = namesOf(entry.term);
    for (const alias of aliases) {
      const inHeading = sections.some((s) => s.heading.startsWith(name) && new RegExp(`\\b${alias}\\b`).test(s.heading));
      assert.ok(inHeading || doc.includes(`\`tend ${alias}\``) || doc.includes(`\`${alias}\` is an alias`), `alias ${alias} of ${name}`);
    }
  }
});

test('no section documents a command that does not exist', () => {
  const known = new Set(REGISTRY.flatMap((e) => namesOf(e.term)));
  const stale = sections.map((s) => s.heading.split(/[\s,]/)[0]).filter((w) => !known.has(w));
  assert.deepEqual(stale, []);
});

test('docs/coming-from.md names only commands tend has', () => {
  const known = new Set(REGISTRY.flatMap((e) => namesOf(e.term)));
  const page = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'coming-from.md'), 'utf8');
  const used = [...page.matchAll(/`tend ([a-z][a-z-]*)/g)].map((m) => m[1]);
  assert.ok(used.length > 30);
  assert.deepEqual([...new Set(used.filter((w) => !known.has(w)))], []);
});
