/**
 * Compose's variable interpolation, on one string: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, nested operands
 * (`${A:-${B:-x}}`), and `$$` for a literal `$`. A `$` that starts neither a name nor `${` is kept
 * as it is (compose does the same). An unset variable without a default becomes "" with a warning;
 * a bad `${...}` or a failed `?` is an error. Every problem carries the index of its `$` so the
 * caller can place it at file:line:column. Hand-written: compose's grammar lives in Go
 * (compose-go); the npm packages around `.env` (dotenv-expand) implement a shell-like variant
 * without `?`/`+` and without positions (docs/decisions.md).
 */

export interface InterpolationProblem {
  /** index of the `$` in the input string */
  index: number;
  /** the expression as written, `${VAR:?...}` */
  expr: string;
  message: string;
  hint?: string;
  severity: 'error' | 'warning';
}

export interface Interpolated {
  value: string;
  problems: InterpolationProblem[];
  /** the input held at least one `$` expression (including `$$`) */
  changed: boolean;
}

export type Lookup = (name: string) => string | undefined;

const NAME_START = /[_a-zA-Z]/;
const NAME_CHAR = /[_a-zA-Z0-9]/;
const OPS = [':-', ':?', ':+', '-', '?', '+'] as const;

class Failure extends Error {
  constructor(readonly problem: InterpolationProblem) {
    super(problem.message);
  }
}

export function interpolate(input: string, lookup: Lookup): Interpolated {
  if (!input.includes('$')) return { value: input, problems: [], changed: false };
  const problems: InterpolationProblem[] = [];
  try {
    const { out } = expand(input, 0, false, lookup, problems);
    return { value: out, problems, changed: true };
  } catch (err) {
    if (err instanceof Failure)
      return { value: input, problems: [...problems.filter((p) => p.severity === 'warning'), err.problem], changed: true };
    throw err;
  }
}

function readName(s: string, i: number): string {
  if (i >= s.length || !NAME_START.test(s[i])) return '';
  let j = i + 1;
  while (j < s.length && NAME_CHAR.test(s[j])) j++;
  return s.slice(i, j);
}

/** The `${...}` starting at `i`, up to its matching brace (or the end), for messages. */
function exprAt(s: string, i: number): string {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    if (s[j] === '{') depth++;
    else if (s[j] === '}' && --depth === 0) return s.slice(i, j + 1);
  }
  return s.slice(i);
}

function expand(s: string, start: number, nested: boolean, lookup: Lookup, problems: InterpolationProblem[]): { out: string; end: number } {
  let out = '';
  let i = start;
  while (i < s.length) {
    const c = s[i];
    if (nested && c === '}') return { out, end: i };
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next !== undefined && NAME_START.test(next)) {
      const name = readName(s, i + 1);
      out += valueOf(name, i, `$${name}`, lookup, problems);
      i += 1 + name.length;
      continue;
    }
    if (next !== '{') {
      out += '$';
      i++;
      continue;
    }
    const expr = exprAt(s, i);
    const name = readName(s, i + 2);
    if (!name) {
      throw new Failure({
        index: i,
        expr,
        message: `invalid interpolation ${expr}: \${ must be followed by a variable name`,
        hint: 'names are letters, digits and _ (not starting with a digit); write $$ for a literal $',
        severity: 'error',
      });
    }
    let k = i + 2 + name.length;
    if (s[k] === '}') {
      out += valueOf(name, i, expr, lookup, problems);
      i = k + 1;
      continue;
    }
    const op = OPS.find((o) => s.startsWith(o, k));
    if (!op) {
      throw new Failure({
        index: i,
        expr,
        message:
          k >= s.length
            ? `invalid interpolation ${expr}: the \${ is never closed`
            : `invalid interpolation ${expr}: after \${${name} comes }, :-, -, :?, ?, :+ or +`,
        hint:
          k >= s.length
            ? `add the closing }: \${${name}}`
            : 'compose supports no other shell forms (such as ${VAR/a/b}); write $$ for a literal $',
        severity: 'error',
      });
    }
    k += op.length;
    const operandProblems: InterpolationProblem[] = [];
    const operand = expand(s, k, true, lookup, operandProblems);
    if (operand.end >= s.length) {
      throw new Failure({
        index: i,
        expr,
        message: `invalid interpolation ${expr}: the \${ is never closed`,
        hint: 'add the closing }',
        severity: 'error',
      });
    }
    const v = lookup(name);
    const set = v !== undefined;
    const nonEmpty = set && v !== '';
    const wants = op.startsWith(':') ? nonEmpty : set;
    switch (op) {
      case ':-':
      case '-':
        if (wants) out += v as string;
        else {
          out += operand.out;
          problems.push(...operandProblems);
        }
        break;
      case ':+':
      case '+':
        if (wants) {
          out += operand.out;
          problems.push(...operandProblems);
        }
        break;
      default: // :? and ?
        if (!wants) {
          const why = operand.out.trim();
          throw new Failure({
            index: i,
            expr,
            message: `required variable ${name} is ${set ? 'empty' : 'not set'}${why ? `: ${why}` : ''}`,
            hint: `set ${name} in the environment or in the .env file next to the project file`,
            severity: 'error',
          });
        }
        out += v as string;
    }
    i = operand.end + 1;
  }
  return { out, end: i };
}

function valueOf(name: string, index: number, expr: string, lookup: Lookup, problems: InterpolationProblem[]): string {
  const v = lookup(name);
  if (v !== undefined) return v;
  problems.push({
    index,
    expr,
    message: `variable ${name} is not set: ${expr} becomes an empty string`,
    hint: `set ${name} (environment or .env), give a default (\${${name}:-value}), or write $$ for a literal $`,
    severity: 'warning',
  });
  return '';
}

/** Every `$` doubled, deep in strings: a value tend writes into a tend.yaml reads back unchanged. */
export function escapeDollars<T>(v: T): T {
  if (typeof v === 'string') return v.replace(/\$/g, '$$$$') as T;
  if (Array.isArray(v)) return v.map((x: unknown) => escapeDollars(x)) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeDollars(x)])) as T;
  return v;
}
