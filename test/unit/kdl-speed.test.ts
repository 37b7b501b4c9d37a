/**
 * kdljs's parser with tend's speed-ups (src/load/kdl-speed.ts) must answer exactly as without
 * them: the same nodes, values and positions, the same first error. Checked on every KDL fixture
 * and on seeded mutations of the good ones.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseKdl } from '../../src/load/kdl-parse.js';
import { fastKdl, KDL_SPEEDUPS } from '../../src/load/kdl-speed.js';
import { FIXTURES, kdlFiles } from '../helpers/kdl-fixtures.js';

function both(text: string): { ok: boolean } {
  fastKdl(false);
  let slow;
  try {
    slow = parseKdl('VMFile.kdl', text);
  } finally {
    fastKdl(true);
  }
  const fast = parseKdl('VMFile.kdl', text);
  assert.deepStrictEqual(fast, slow, `the fast parse differs on:\n${text}`);
  return { ok: fast.nodes !== null };
}

describe('kdljs speed-ups', () => {
  test('are installed on the kdljs in use', () => {
    assert.equal(KDL_SPEEDUPS, true, "kdljs's parser changed shape: src/load/kdl-speed.ts no longer applies");
  });

  test('every KDL fixture parses to the same nodes and errors', () => {
    const files = kdlFiles(FIXTURES);
    assert.ok(files.length > 50);
    let good = 0;
    for (const f of files) if (both(readFileSync(f, 'utf8')).ok) good++;
    assert.ok(good > 10 && good < files.length, `${good} of ${files.length} parsed`);
  });

  test('values, properties, tags and comments of every kind', () => {
    for (const t of [
      'vm "a" { memory 512; vcpus 0x2; x 1.5e3 #true #false #null #inf #-nan; }',
      'n key=1 "k"=#true r#"raw"#=2 k2 = "v" (t)1 (u)"s" k3=(t)3',
      'n /-1 2 /-k=3 /-{ a } { b }',
      'n "a\\n\\u{41}" """\n  multi\n  line\n  """ #"""\n  raw\n  """#',
      'n 1 \\\n  2 /* c */ 3 // end',
      'n true false null',
      'n k=',
      'n "k" =',
      'n ("t" ) 1',
      'n "unterminated',
      'n 1_000 -0b101 0o17 +12',
    ])
      both(t);
  });

  test('seeded mutations of the good files', () => {
    const seeds = kdlFiles(join(FIXTURES, 'good')).map((f) => readFileSync(f, 'utf8'));
    const tokens = ['{', '}', '"', '=', ' ', '\n', ';', '(', ')', '/-', '#true', '1', '0x1', 'r#"', '"#', '\\', 'k=', '//', '/*'];
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.record({ at: fc.nat(), text: fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 3 })) }), {
          minLength: 1,
          maxLength: 3,
        }),
        (which, ops) => {
          let t = seeds[which];
          for (const o of ops) {
            const at = o.at % (t.length + 1);
            t = t.slice(0, at) + o.text + t.slice(at);
          }
          both(t);
        },
      ),
      { numRuns: Number(process.env.TEND_FUZZ_RUNS ?? 1000), seed: Number(process.env.TEND_FUZZ_SEED ?? 20261202) },
    );
  });
});
