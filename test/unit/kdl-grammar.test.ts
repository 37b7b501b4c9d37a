/**
 * tend builds kdljs's lexer and parser without chevrotain's grammar checks (start-up time,
 * src/load/kdl-grammar-checks.ts). Here the checks run on kdljs's grammar, so a kdljs whose
 * grammar chevrotain would reject fails CI; a broken grammar shows the checks really run; and
 * lexer and parser built with the checks answer exactly as the ones tend uses.
 */
// first, as in production: tend's KDL parser module, which loads kdljs without the checks
import { parseKdl } from '../../src/load/kdl-parse.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { createToken, EmbeddedActionsParser, Lexer } from 'chevrotain';
import { KdlParser, lexer, parser } from 'kdljs/src/parser/kdl.js';
import { grammarChecks, grammarChecksSkipped } from '../../src/load/kdl-grammar-checks.js';
import { FIXTURES, kdlFiles } from '../helpers/kdl-fixtures.js';

interface ChevLexer {
  lexerDefinition: unknown;
  lexerDefinitionErrors: unknown[];
  lexerDefinitionWarning: unknown[];
  tokenize(text: string): { tokens: Tok[]; errors: { offset: number; message: string }[] };
}
interface Tok {
  image: string;
  startOffset: number;
  startLine?: number;
  startColumn?: number;
  tokenType: { name: string };
}
interface ChevParser {
  input: Tok[];
  document(): unknown;
  errors: { message: string; token: Tok }[];
  definitionErrors: unknown[];
}

const tendLexer = lexer as unknown as ChevLexer;
const tendParser = parser as unknown as ChevParser;

/** kdljs's lexer and parser, built again with chevrotain's checks (they throw on a broken grammar). */
function checked(): { lexer: ChevLexer; parser: ChevParser } {
  grammarChecks(true);
  try {
    return {
      lexer: new Lexer(tendLexer.lexerDefinition as ConstructorParameters<typeof Lexer>[0]) as unknown as ChevLexer,
      parser: new KdlParser() as unknown as ChevParser,
    };
  } finally {
    grammarChecks(false);
  }
}

const tokens = (ts: Tok[]) => ts.map((t) => [t.tokenType.name, t.image, t.startOffset, t.startLine, t.startColumn]);

describe("kdljs's grammar", () => {
  after(() => grammarChecks(false));

  test('tend builds kdljs without the checks (the start-up saving is real)', () => {
    assert.ok(parseKdl('VMFile.kdl', 'vm "a"').nodes);
    assert.equal(grammarChecksSkipped(lexer as unknown as Lexer), true);
    assert.equal(grammarChecksSkipped(parser as unknown as EmbeddedActionsParser), true);
  });

  test("passes chevrotain's checks: no definition error, no warning", () => {
    const c = checked();
    assert.equal(grammarChecksSkipped(c.lexer as unknown as Lexer), false);
    assert.equal(grammarChecksSkipped(c.parser as unknown as EmbeddedActionsParser), false);
    assert.deepEqual(c.lexer.lexerDefinitionErrors, []);
    assert.deepEqual(c.lexer.lexerDefinitionWarning, []);
    assert.deepEqual(c.parser.definitionErrors, []);
  });

  test('a broken grammar is caught with the checks and passes without them', () => {
    const A = createToken({ name: 'A', pattern: /a/ });
    const Empty = createToken({ name: 'Empty', pattern: /b*/ });
    class Ambiguous extends EmbeddedActionsParser {
      constructor() {
        super([A]);
        this.RULE('top', () => this.OR([{ ALT: () => this.CONSUME(A) }, { ALT: () => this.CONSUME1(A) }]));
        this.performSelfAnalysis();
      }
    }
    assert.doesNotThrow(() => new Ambiguous());
    assert.doesNotThrow(() => new Lexer([A, Empty]));
    grammarChecks(true);
    try {
      assert.throws(() => new Ambiguous(), /Ambiguous Alternatives/);
      assert.throws(() => new Lexer([A, Empty]), /must not match an empty string/);
    } finally {
      grammarChecks(false);
    }
  });

  test('lexer and parser built with the checks answer as the ones tend uses, on every KDL fixture', () => {
    const c = checked();
    const files = kdlFiles(FIXTURES);
    assert.ok(files.length > 50);
    let rejected = 0;
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const [a, b] = [tendLexer.tokenize(text), c.lexer.tokenize(text)];
      assert.deepEqual(tokens(a.tokens), tokens(b.tokens), f);
      assert.deepEqual(
        a.errors.map((e) => [e.offset, e.message]),
        b.errors.map((e) => [e.offset, e.message]),
        f,
      );
      if (a.errors.length > 0) {
        rejected++;
        continue;
      }
      tendParser.input = a.tokens;
      const out = tendParser.document();
      const errs = tendParser.errors.map((e) => [e.message, e.token.startOffset]);
      c.parser.input = b.tokens;
      assert.deepEqual(c.parser.document(), out, f);
      assert.deepEqual(
        c.parser.errors.map((e) => [e.message, e.token.startOffset]),
        errs,
        f,
      );
      if (errs.length > 0) rejected++;
    }
    assert.ok(rejected > 5 && rejected < files.length, `${rejected} of ${files.length} fixtures with syntax errors`);
  });
});
