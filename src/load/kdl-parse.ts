/**
 * KDL text → a tree of nodes whose every name and value carries its line:column, or syntax
 * diagnostics in plain words. kdljs (KDL 2) does the parsing; `kdl-locate.ts` adds positions.
 * KDL 1 booleans and null (`true`, `false`, `null`, as vmctl's examples write them) are accepted
 * as `#true`, `#false`, `#null`.
 */
import type { Node as KdljsNode, Value } from 'kdljs';
// before kdljs: its lexer and parser are built without chevrotain's grammar checks
import './kdl-grammar-checks.js';
// kdljs's parser module only: its index also builds a KQL query parser tend does not use
import { lexer, parse, parser, type KdlToken } from 'kdljs/src/parser/kdl.js';
import './kdl-speed.js';
import type { SourceLocation } from '../../schemas/model.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { memoryWithUnitToMiB } from '../../schemas/units.js';
import { locateNodes, posOf, type LocNode, type Pos } from './kdl-locate.js';
import { MAX_DEPTH } from './limits.js';

export type KdlValue = Value;

export interface KValue {
  value: KdlValue;
  loc: SourceLocation;
}

export interface KNode {
  name: string;
  loc: SourceLocation;
  args: KValue[];
  props: { key: string; keyLoc: SourceLocation; value: KdlValue; loc: SourceLocation }[];
  /** null when the node has no `{ }` block */
  children: KNode[] | null;
  childrenLoc: SourceLocation | null;
}

export interface KdlParseResult {
  nodes: KNode[] | null;
  diagnostics: Diagnostic[];
}

const V1_KEYWORDS: Record<string, string> = { true: '#true', false: '#false', null: '#null' };

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) starts.push(i + 1);
  }
  return starts;
}

function posAt(starts: number[], offset: number): Pos {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo] + 1 };
}

export function parseKdl(file: string, text: string): KdlParseResult {
  const at = (p: Pos, message: string, hint?: string): Diagnostic => ({
    file,
    line: p.line,
    column: p.column,
    message,
    ...(hint ? { hint } : {}),
    severity: 'error',
  });
  let lexed: ReturnType<typeof lexer.tokenize>;
  try {
    lexed = lexer.tokenize(text);
  } catch (err) {
    // chevrotain's regular expressions recurse: a value of megabytes can exhaust the stack
    if (!(err instanceof RangeError)) throw err;
    return {
      nodes: null,
      diagnostics: [at({ line: 1, column: 1 }, 'the file has a value too long to read', 'put large content into a file')],
    };
  }
  if (lexed.errors.length > 0) return { nodes: null, diagnostics: [lexProblem(lexed.tokens, lexed.errors[0], text, at)] };
  const deep = tooDeep(lexed.tokens);
  if (deep)
    return {
      nodes: null,
      diagnostics: [
        at(posOf(deep), `blocks are nested more than ${MAX_DEPTH} deep here`, 'a VMFile.kdl needs 4 levels at most: is a "}" missing?'),
      ],
    };

  // KDL 1 keywords → KDL 2, remembering the shifts so error offsets map back to the user's text.
  const shifts: { at: number; delta: number }[] = [];
  let rewritten = '';
  let last = 0;
  for (const t of lexed.tokens) {
    const repl = t.tokenType.name === 'Identifier' ? V1_KEYWORDS[t.image] : undefined;
    if (repl === undefined) continue;
    rewritten += text.slice(last, t.startOffset) + repl;
    last = t.startOffset + t.image.length;
    shifts.push({ at: t.startOffset, delta: repl.length - t.image.length });
  }
  rewritten += text.slice(last);

  let starts: number[] | undefined; // line starts: needed only to place a parse error
  const original = (offset: number): number => {
    let acc = 0;
    for (const s of shifts) {
      if (s.at + acc < offset) acc += s.delta;
    }
    return Math.max(0, Math.min(offset - acc, text.length));
  };

  // kdljs (chevrotain) backtracks with exceptions; their stack traces cost more than the parse
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let parsed: ReturnType<typeof parse>;
  try {
    // the tokens lexed above are the parser's input unless KDL 1 keywords were rewritten
    if (shifts.length === 0) {
      parser.input = lexed.tokens;
      const output = parser.document();
      parsed = { output, errors: parser.errors } as ReturnType<typeof parse>;
    } else parsed = parse(rewritten);
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (parsed.errors.length > 0 || !parsed.output) {
    const err = parsed.errors[0] as unknown as { message: string; token?: KdlToken; previousToken?: KdlToken } | undefined;
    starts ??= lineStarts(text);
    return { nodes: null, diagnostics: [parseProblem(err, lexed.tokens, text, starts, original, at)] };
  }
  const locs = locateNodes(lexed.tokens);
  return { nodes: zip(parsed.output, locs, file, { line: 1, column: 1 }), diagnostics: [] };
}

/** The first `{` that opens a block deeper than MAX_DEPTH (kdljs recurses once per level). */
function tooDeep(tokens: KdlToken[]): KdlToken | undefined {
  let depth = 0;
  for (const t of tokens) {
    const n = t.tokenType.name;
    if (n === 'LeftBrace' && ++depth > MAX_DEPTH) return t;
    if (n === 'RightBrace') depth = Math.max(0, depth - 1);
  }
  return undefined;
}

function zip(nodes: KdljsNode[], locs: LocNode[], file: string, fallback: Pos): KNode[] {
  return nodes.map((n, i) => {
    const l = locs[i];
    const here = l?.name ?? fallback;
    const loc = { file, ...here };
    const propLocs = new Map((l?.props ?? []).map((p) => [p.key, p]));
    return {
      name: n.name,
      loc,
      args: n.values.map((v, j) => ({ value: v, loc: { file, ...(l?.values[j] ?? here) } })),
      props: Object.entries(n.properties).map(([key, value]) => {
        const p = propLocs.get(key);
        return { key, keyLoc: { file, ...(p?.keyPos ?? here) }, value, loc: { file, ...(p?.valuePos ?? here) } };
      }),
      children: l?.children ? zip(n.children, l.children, file, here) : n.children.length > 0 ? zip(n.children, [], file, here) : null,
      childrenLoc: l?.childrenPos ? { file, ...l.childrenPos } : null,
    };
  });
}

type At = (p: Pos, message: string, hint?: string) => Diagnostic;

function lexProblem(tokens: KdlToken[], err: { offset: number; line?: number; column?: number }, text: string, at: At): Diagnostic {
  // An opening quote with no closing quote before the error: an unclosed string.
  let open: KdlToken | undefined;
  for (const t of tokens) {
    if (t.startOffset >= err.offset) break;
    const n = t.tokenType.name;
    if (n === 'OpenQuote' || n === 'MultiLineOpenQuote') open = t;
    else if (n === 'CloseQuote' || n === 'MultiLineCloseQuote') open = undefined;
  }
  if (open) {
    return open.tokenType.name === 'OpenQuote'
      ? at(
          posOf(open),
          'this string is not closed: the closing " is missing',
          'end the string with " on the same line (use """ for text over several lines)',
        )
      : at(posOf(open), 'this multi-line string is not closed: the closing """ is missing');
  }
  const ch = text[err.offset] ?? '';
  const p = { line: err.line ?? 1, column: err.column ?? 1 };
  return at(p, `unexpected character ${JSON.stringify(ch)}`, ch === "'" ? 'KDL strings use double quotes: "..."' : undefined);
}

/** The `{` that most likely lacks its `}`: an unclosed one, or one closed at a different indentation. */
function unclosedBrace(tokens: KdlToken[], text: string): KdlToken | undefined {
  const starts = lineStarts(text);
  const indentOf = (t: KdlToken): number => {
    const line = (t.startLine ?? 1) - 1;
    const s = text.slice(starts[line] ?? 0);
    return s.length - s.trimStart().length;
  };
  const stack: KdlToken[] = [];
  let mismatched: KdlToken | undefined;
  for (const t of tokens) {
    if (t.tokenType.name === 'LeftBrace') stack.push(t);
    else if (t.tokenType.name === 'RightBrace') {
      const o = stack.pop();
      if (o && !mismatched && o.startLine !== t.startLine && indentOf(o) !== indentOf(t)) mismatched = o;
    }
  }
  if (stack.length === 0) return undefined;
  if (mismatched && (mismatched.startOffset > stack[0].startOffset || mismatched === stack[0])) return mismatched;
  return stack[stack.length - 1];
}

function describe(t: KdlToken): string {
  const n = t.tokenType.name;
  if (n === 'NewLine') return 'end of line';
  if (n === 'EOF') return 'end of file';
  return JSON.stringify(t.image);
}

function parseProblem(
  err: { message: string; token?: KdlToken; previousToken?: KdlToken } | undefined,
  tokens: KdlToken[],
  text: string,
  starts: number[],
  original: (offset: number) => number,
  at: At,
): Diagnostic {
  const tok = err?.token;
  const isEof = !tok || tok.tokenType.name === 'EOF' || Number.isNaN(tok.startOffset);
  if (isEof) {
    const open = unclosedBrace(tokens, text);
    if (open) return at(posOf(open), 'this block is not closed: a "}" is missing', 'add "}" where the block ends');
    const lastTok = tokens[tokens.length - 1];
    return at(posOf(lastTok), 'the file ends in the middle of a node');
  }
  const offset = original(tok.startOffset);
  const p = posAt(starts, offset);
  const idx = tokens.findIndex((t) => t.startOffset === offset);
  const srcTok = idx >= 0 ? tokens[idx] : undefined;
  const n = tok.tokenType.name;
  if (n === 'RightBrace') {
    return at(p, 'unexpected "}": there is no open block to close here', 'remove this "}" or add the "{" it should close');
  }
  // A number glued to a unit: `memory 2G`.
  const prev = srcTok && idx > 0 ? tokens[idx - 1] : undefined;
  if (n === 'Identifier' && prev && prev.tokenType.name === 'Float' && prev.startOffset + prev.image.length === srcTok?.startOffset) {
    const lineToks = tokens.filter((t) => t.startLine === p.line && t.tokenType.name === 'Identifier');
    const nodeName = lineToks[0]?.image;
    const written = prev.image + tok.image;
    const pp = posOf(prev);
    if (nodeName === 'memory') {
      const mib = memoryWithUnitToMiB(written);
      return at(pp, `memory is in MiB: "${written}" is not a number`, mib !== null ? `write memory ${mib}` : 'write memory 2048');
    }
    if (nodeName === 'disk') {
      const gib = /^(\d+)\s*(g|gb|gib)$/i.exec(written)?.[1];
      return at(pp, `disk is in GiB: "${written}" is not a number`, `write disk ${gib ?? '20'}`);
    }
    return at(pp, `"${written}" is not a number`, `write a plain number, or quote it if it is text: "${written}"`);
  }
  if (n === 'Identifier' && ['inf', '-inf', 'nan'].includes(tok.image)) {
    return at(p, `"${tok.image}" is a reserved word in KDL`, `quote it: "${tok.image}"`);
  }
  if ((n === 'OpenQuote' || n === 'MultiLineOpenQuote') && srcTok) {
    const close = n === 'OpenQuote' ? 'CloseQuote' : 'MultiLineCloseQuote';
    if (!tokens.slice(idx + 1).some((t) => t.tokenType.name === close)) {
      return at(p, 'this string is not closed: the closing " is missing', 'end the string with " on the same line');
    }
  }
  if (
    prev &&
    srcTok &&
    prev.startOffset + prev.image.length === srcTok.startOffset &&
    !['WhiteSpace', 'NewLine'].includes(prev.tokenType.name)
  ) {
    return at(
      p,
      `a space is needed before ${describe(tok)}`,
      n === 'LeftBrace' ? 'write vm "web" { ... }, with a space before "{"' : 'separate values with a space',
    );
  }
  if (n === 'Equals')
    return at(
      p,
      'unexpected "=": a property needs a name before "=" and a value after it',
      'VMFile.kdl nodes take values, e.g. memory 2048',
    );
  return at(
    p,
    `unexpected ${describe(tok)}`,
    'each node is a name followed by its values on one line, e.g. memory 2048; blocks are written { ... }',
  );
}
