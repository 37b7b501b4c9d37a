/**
 * The fast YAML reader (src/load/yaml-fast.ts) must give exactly the data the yaml library gives,
 * or decline. Checked on every YAML fixture, on seeded mutations of the good ones, and on the
 * scalars where YAML schemas differ. A file the yaml library rejects must never be accepted.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { fastYaml } from '../../src/load/yaml-fast.js';
import { loadProject } from '../../src/load/project.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(n) ? [p] : [];
  });
}

/** What the yaml library makes of the text (as compose-yaml.ts reads it), or null when it reports an error. */
function reference(text: string): { data: unknown } | null {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, strict: true, merge: true, logLevel: 'error' });
  if (doc.errors.length) return null;
  try {
    return { data: doc.toJS({ maxAliasCount: 100 }) ?? null };
  } catch {
    return null;
  }
}

function agrees(text: string): 'fast' | 'declined' {
  const fast = fastYaml(text);
  if (!fast) return 'declined';
  const ref = reference(text);
  assert.ok(ref, `the fast reader accepted a file the yaml library rejects:\n${text}`);
  assert.deepStrictEqual(fast.data, ref.data, `the fast reader read this differently:\n${text}`);
  return 'fast';
}

describe('fast YAML reader', () => {
  test('every YAML fixture: the same data as the yaml library, or declined', () => {
    const files = yamlFiles(FIXTURES);
    assert.ok(files.length > 100);
    let fast = 0;
    for (const f of files) if (agrees(readFileSync(f, 'utf8')) === 'fast') fast++;
    // most good files are plain: the fast path must be the common one
    assert.ok(fast > files.length / 3, `only ${fast} of ${files.length} fixtures were read fast`);
  });

  test('scalars resolve as in the yaml core schema', () => {
    const words = [
      '~',
      'null',
      'Null',
      'NULL',
      'nULL',
      '',
      'true',
      'True',
      'TRUE',
      'tRUE',
      'yes',
      'no',
      'on',
      'off',
      'y',
      'n',
      '0',
      '-0',
      '+12',
      '012',
      '0o17',
      '0o19',
      '0x1F',
      '0X1F',
      '0b101',
      '1_000',
      '1,000',
      '0.5',
      '.5',
      '5.',
      '-.5',
      '1e3',
      '1E-3',
      '+1.5e+3',
      '.inf',
      '-.Inf',
      '+.INF',
      '.nan',
      '.NaN',
      'NaN',
      'inf',
      '2026-12-02',
      '2026-12-02T05:00:00Z',
      '12:30',
      '1:20:30',
      '9007199254740993',
      '1e400',
      '0x',
      '+',
      '-',
      '.',
      'debian:12',
      '=',
      '<<',
    ];
    for (const w of words) {
      agrees(`k: ${w}\n`);
      agrees(`- ${w}\n`);
      agrees(`[${w || '""'}]\n`);
      agrees(`"k": '${w}'\n`);
    }
  });

  test('files that need the yaml library are declined', () => {
    for (const text of [
      'a: &x 1\nb: *x\n', // anchors and aliases (alias bombs are counted by the yaml library)
      'base: &b {cpus: 1}\nweb: {<<: *b}\n',
      'a: !!str 1\n', // tags
      'a: !custom x\n',
      '%YAML 1.1\n---\na: yes\n', // directives change the schema
      'a: 1\na: 2\n', // duplicate keys
      'a:\n\tb: 1\n', // tab indentation
      'a: [1, 2\n', // syntax errors
      'a: 1\n---\nb: 2\n', // several documents
      `${'['.repeat(40)}${']'.repeat(40)}\n`, // deeper than the limit
    ])
      assert.equal(fastYaml(text), undefined, text);
  });

  test('seeded mutations of the good files: the same data, or declined', () => {
    const seeds = yamlFiles(join(FIXTURES, 'good')).map((f) => readFileSync(f, 'utf8'));
    const tokens = [
      '{',
      '}',
      '[',
      ']',
      '"',
      "'",
      ':',
      ': ',
      '- ',
      '\n',
      '  ',
      '#',
      ',',
      '|',
      '>',
      '?',
      '0',
      '1.5',
      '~',
      'x',
      '<<: ',
      '\\',
      '\r\n',
    ];
    let fast = 0;
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.record({ at: fc.nat(), text: fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 4 })) }), {
          minLength: 1,
          maxLength: 3,
        }),
        (which, ops) => {
          let t = seeds[which];
          for (const o of ops) {
            const at = o.at % (t.length + 1);
            t = t.slice(0, at) + o.text + t.slice(at);
          }
          if (agrees(t) === 'fast') fast++;
        },
      ),
      { numRuns: Number(process.env.TEND_FUZZ_RUNS ?? 2000), seed: Number(process.env.TEND_FUZZ_SEED ?? 20261202) },
    );
    assert.ok(fast > 100, `only ${fast} mutations were read fast`);
  });

  test('a diagnostic of a file read fast is placed as precisely as one read with positions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tend-yaml-fast-'));
    try {
      writeFileSync(join(dir, 'tend.yaml'), 'services:\n  web:\n    image: debian:12\n    vm:\n      memory_mb: 2G\n');
      const r = await loadProject([join(dir, 'tend.yaml')]);
      assert.equal(r.project, null);
      const d = r.diagnostics.find((x) => /memory_mb/.test(x.message));
      assert.ok(d, JSON.stringify(r.diagnostics));
      assert.deepEqual([d.line, d.column], [5, 18]);
      // the same file with an anchor takes the slow path: the same answer
      writeFileSync(join(dir, 'tend.yaml'), 'services:\n  web: &w\n    image: debian:12\n    vm:\n      memory_mb: 2G\n');
      const slow = await loadProject([join(dir, 'tend.yaml')]);
      assert.deepEqual(
        slow.diagnostics.map((x) => [x.line, x.column, x.message]),
        r.diagnostics.map((x) => [x.line, x.column, x.message]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
