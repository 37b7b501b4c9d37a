/**
 * Makes kdljs's parser (chevrotain) fast enough for large files, without changing what it
 * accepts or answers. Its grammar tries every node entry first as a property, then as an
 * argument, by backtracking: each failed try throws, and chevrotain builds a full "expected one
 * of ..." message for it (its lookahead paths) that nobody reads. On 5,000 VMs that was most of
 * the parse. Two changes, both exact:
 *  - while backtracking, a "no viable alternative" is thrown without its message (the message is
 *    discarded by the backtrack anyway; outside backtracking the full message is kept);
 *  - the property/argument tries answer at once when the next tokens decide them for certain
 *    (a property starts with a string key followed by "="; a number, #true or #null is always
 *    a whole argument), and backtrack as before in every other case.
 * Applied once, only to the kdljs version whose grammar it was written for (shape checked);
 * `fastKdl(false)` turns it off (the parity test compares both ways).
 */
import './kdl-grammar-checks.js';
import { parser } from 'kdljs/src/parser/kdl.js';

interface Token {
  tokenType: { name: string };
}
interface Recognizer {
  property: unknown;
  argument: unknown;
  BACKTRACK(rule: unknown, args?: unknown): (this: Recognizer) => boolean;
  raiseNoAltException(occurrence: number, errMsgTypes: unknown): never;
  isBackTracking(): boolean;
  SAVE_ERROR(e: Error): Error;
  LA(i: number): Token;
}

/** Tokens that are a whole value on their own: the `value` rule consumes exactly one of them. */
const SCALAR = new Set(['Integer', 'Float', 'Boolean', 'Null', 'FloatKeyword']);
/** Tokens a `string` (a property's key) can start with. */
const STRING_START = new Set(['Identifier', 'OpenQuote', 'MultiLineOpenQuote', 'RawString', 'MultiLineRawString']);

/** Tokens the optional space between a property's key and its "=" can start with. */
const SPACE_START = new Set(['WhiteSpace', 'EscLine', 'OpenMultiLineComment']);

let enabled = true;

/**
 * Whether the entry at LA(1) (a string start) certainly is not a property: after its key comes
 * neither "=" nor space that could precede one. Otherwise (maybe a property) undefined.
 */
function certainlyNotProperty(p: Recognizer): boolean {
  let i = 1;
  const first = p.LA(i).tokenType.name;
  if (first === 'OpenQuote') {
    // a quoted string ends at its closing quote (the lexer's string mode has no nested quotes)
    for (i = 2; ; i++) {
      const t = p.LA(i).tokenType.name;
      if (t === 'CloseQuote') break;
      if (t === 'EOF') return false;
    }
  } else if (first === 'MultiLineOpenQuote') return false;
  let next = p.LA(++i).tokenType.name;
  if (next === 'WhiteSpace') next = p.LA(++i).tokenType.name;
  return next !== 'Equals' && !SPACE_START.has(next);
}

/** Turn the speed-ups on or off (both give the same results; tests compare them). */
export function fastKdl(on: boolean): void {
  enabled = on;
}

function install(): boolean {
  const p = parser as unknown as Recognizer;
  const shapeOk =
    typeof p.BACKTRACK === 'function' &&
    typeof p.raiseNoAltException === 'function' &&
    typeof p.isBackTracking === 'function' &&
    typeof p.SAVE_ERROR === 'function' &&
    typeof p.LA === 'function' &&
    typeof p.property === 'function' &&
    typeof p.argument === 'function';
  if (!shapeOk) return false;

  const raise = p.raiseNoAltException;
  p.raiseNoAltException = function (this: Recognizer, occurrence, errMsgTypes) {
    if (!enabled || !this.isBackTracking()) return raise.call(this, occurrence, errMsgTypes);
    // chevrotain recognises its exceptions by name; the message is never shown
    throw this.SAVE_ERROR(
      Object.assign(new Error('no viable alternative'), {
        name: 'NoViableAltException',
        token: this.LA(1),
        previousToken: this.LA(0),
        resyncedTokens: [],
      }),
    );
  };

  const backtrack = p.BACKTRACK;
  const notProperty = function (this: Recognizer): boolean {
    return false;
  };
  const anArgument = function (this: Recognizer): boolean {
    return true;
  };
  p.BACKTRACK = function (this: Recognizer, rule, args) {
    const full = backtrack.call(this, rule, args);
    if (!enabled) return full;
    const next = this.LA(1).tokenType.name;
    // a property starts with its key, a string: anything else fails the property rule at once
    if (rule === this.property && (!STRING_START.has(next) || certainlyNotProperty(this))) return notProperty;
    // a number or keyword token is an argument (value rule) by itself, with no tag before it
    if (rule === this.argument && SCALAR.has(next)) return anArgument;
    return full;
  };
  return true;
}

/** Whether the speed-ups are in place (false: a kdljs whose parser has another shape). */
export const KDL_SPEEDUPS = install();
