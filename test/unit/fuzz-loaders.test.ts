/**
 * Fuzz: mutations of the good files of every dialect, through load (validate) and plan,
 * in-process. Whatever the bytes, tend answers with positioned diagnostics — never a throw, a
 * raw JavaScript message, a position outside the file, or a file that takes over 2 s.
 *
 * Seeded and reproducible: $TEND_FUZZ_SEED (default below) and $TEND_FUZZ_RUNS (default 2000 per
 * dialect). A failure prints fast-check's seed and path; replay it with TEND_FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { plan } from '../../controllers/plan.js';
import { loadProject } from '../../src/load/project.js';

const SEED = Number(process.env.TEND_FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.TEND_FUZZ_RUNS ?? 2000);
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const work = mkdtempSync(join(tmpdir(), 'tend-fuzz-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Good files of one dialect, each copied with its folder (scripts, keys, user-data it references). */
function seeds(dialect: string, fileName: string, files: string[]): { path: string; text: string }[] {
  return files.map((src, i) => {
    const dir = join(work, `${dialect}-${i}`);
    cpSync(dirname(src), dir, { recursive: true });
    writeFileSync(join(dir, 'home-file.txt'), 'x'); // ~/home-file.txt of the tend.yaml fixture (HOME is this folder)
    const path = join(dir, fileName);
    const text = readFileSync(src, 'utf8');
    writeFileSync(path, text);
    return { path, text };
  });
}
const sub = (d: string, name: string): string[] =>
  readdirSync(join(FIXTURES, d), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(FIXTURES, d, e.name, name));

const DIALECTS = [
  { name: 'VMFile.kdl', seeds: () => seeds('kdl', 'VMFile.kdl', [join(FIXTURES, 'good', 'kdl', 'full', 'VMFile.kdl')]) },
  { name: 'tend.yaml', seeds: () => seeds('yaml', 'tend.yaml', [join(FIXTURES, 'good', 'yaml', 'full.yaml')]) },
  { name: 'vms.yml', seeds: () => seeds('vms', 'vms.yml', sub('good/vms', 'vms.yml')) },
];

/** Fragments that make parsers and readers work: structure, quoting, anchors, numbers, odd bytes. */
const TOKENS = [
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
  '\t',
  '#',
  '//',
  '/*',
  '*/',
  ';',
  '=',
  ',',
  '\\',
  '&a ',
  '*a',
  '<<: *a',
  '!!binary ',
  '---',
  '...',
  '|',
  '>',
  '?',
  '(',
  ')',
  'r#"',
  '"#',
  '0',
  '-1',
  '1e26',
  '9007199254740993',
  '0x10',
  'NaN',
  'null',
  'true',
  '~',
  '"/dev/zero"',
  '/dev/zero',
  '"-oProxyCommand=x"',
  '\u0000',
  '\ufeff',
  '\u202e',
  'é',
  '𝕏',
  'vm "x" {}',
  'image "debian:12"',
  'services:',
  'vms:',
  'x'.repeat(300),
  // compose interpolation and merge tags (tend.yaml)
  '$',
  '$$',
  '${',
  '${HOME}',
  '$HOME',
  '${X:-',
  '${X:?no}',
  '${HOME:+${X-y}}',
  '!reset ',
  '!override ',
];

type Op =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'dupLine' | 'delLine'; at: number }
  | { kind: 'swapLines'; at: number; with: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constantFrom('dupLine' as const, 'delLine' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), at: fc.nat(), with: fc.nat() }),
);

function mutate(text: string, ops: Op[]): string {
  let t = text;
  for (const o of ops) {
    if (o.kind === 'insert' || o.kind === 'delete') {
      const at = t.length ? o.at % (t.length + 1) : 0;
      t = o.kind === 'insert' ? t.slice(0, at) + o.text + t.slice(at) : t.slice(0, at) + t.slice(at + o.len);
      continue;
    }
    const lines = t.split('\n');
    const i = o.at % lines.length;
    if (o.kind === 'dupLine') lines.splice(i, 0, lines[i]);
    else if (o.kind === 'delLine') lines.splice(i, 1);
    else if (o.kind === 'swapLines') {
      const j = o.with % lines.length;
      [lines[i], lines[j]] = [lines[j], lines[i]];
    }
    t = lines.join('\n');
  }
  return t;
}

const RAW_JS =
  /TypeError|RangeError|ReferenceError|SyntaxError: Unexpected|Cannot read propert|is not a function|Maximum call stack|undefined is not|\[object Object\]/;

describe('fuzz: mutated project files through validate and plan', () => {
  for (const d of DIALECTS) {
    test(`${d.name}: ${RUNS} mutations (seed ${SEED})`, async () => {
      const files = d.seeds();
      assert.ok(files.length > 0, `no good ${d.name} fixtures`);
      for (const f of files) {
        const clean = await loadProject([f.path], { env: { HOME: dirname(f.path) } });
        assert.ok(clean.project, `the seed ${f.path} itself has errors: ${JSON.stringify(clean.diagnostics)}`);
      }
      let withErrors = 0;
      await fc.assert(
        fc.asyncProperty(fc.nat(files.length - 1), fc.array(op, { minLength: 1, maxLength: 4 }), async (which, ops) => {
          const seed = files[which];
          const text = mutate(seed.text, ops);
          writeFileSync(seed.path, text);
          const t0 = performance.now();
          const r = await loadProject([seed.path], { env: { HOME: dirname(seed.path) } }); // a throw fails the property
          const lineCount = text.split('\n').length;
          for (const diag of r.diagnostics) {
            const where = `${diag.file}:${diag.line}:${diag.column}: ${diag.message}`;
            assert.ok(Number.isInteger(diag.line) && diag.line >= 1 && diag.line <= lineCount + 1, `line outside the file: ${where}`);
            assert.ok(Number.isInteger(diag.column) && diag.column >= 1, `bad column: ${where}`);
            assert.ok(diag.message.trim().length > 0, `empty message at ${where}`);
            assert.doesNotMatch(diag.message, RAW_JS, `a raw JavaScript error reached the user: ${where}`);
          }
          if (r.project) plan(r.project, { vms: {} }, { recreate: false, prune: false });
          else withErrors++;
          const ms = performance.now() - t0;
          assert.ok(ms < 2000, `one file took ${Math.round(ms)} ms`);
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
      writeFileSync(files[0].path, files[0].text);
      // the mutations must reach the readers, not only the parser's first error
      assert.ok(withErrors > RUNS / 10 && withErrors < RUNS, `${withErrors} of ${RUNS} mutated files had errors`);
      assert.ok(process.memoryUsage().rss < 1.5 * 1024 ** 3, `RSS grew to ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`);
    });
  }
});
