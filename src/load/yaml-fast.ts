/**
 * The fast way to read a YAML project file: js-yaml (no syntax tree, no positions; ~10× faster
 * than the `yaml` library on a 1 MB file) with a schema that resolves plain scalars exactly as
 * `yaml`'s core schema does. It answers only for plain files: anything that needs `yaml`'s own
 * rules or messages (a syntax error, a duplicate key, anchors and aliases, tags, directives,
 * too deep a nesting) makes it decline, and the caller reads the file with `yaml`, with positions.
 * Positions of a file read this way are found on demand (compose-yaml.ts, YamlLocator).
 */
import jsyaml from 'js-yaml';
import { MAX_DEPTH } from './limits.js';

// The regular expressions of yaml's core schema (yaml/dist/schema/core, common/null.js).
const NULL_RE = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL_RE = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT_RE = /^0o[0-7]+$/;
const INT_RE = /^[-+]?[0-9]+$/;
const INT_HEX_RE = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN_RE = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP_RE = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT_RE = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

const SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    new jsyaml.Type('tag:yaml.org,2002:null', {
      kind: 'scalar',
      resolve: (s: string) => NULL_RE.test(s),
      construct: () => null,
    }),
    new jsyaml.Type('tag:yaml.org,2002:bool', {
      kind: 'scalar',
      resolve: (s: string) => BOOL_RE.test(s),
      construct: (s: string) => s[0] === 't' || s[0] === 'T',
    }),
    new jsyaml.Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: string) => INT_RE.test(s) || INT_OCT_RE.test(s) || INT_HEX_RE.test(s),
      construct: (s: string) =>
        INT_OCT_RE.test(s) ? parseInt(s.slice(2), 8) : INT_HEX_RE.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10),
    }),
    new jsyaml.Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: string) => FLOAT_NAN_RE.test(s) || FLOAT_EXP_RE.test(s) || FLOAT_RE.test(s),
      construct: (s: string) =>
        FLOAT_NAN_RE.test(s)
          ? s.slice(-3).toLowerCase() === 'nan'
            ? NaN
            : s[0] === '-'
              ? Number.NEGATIVE_INFINITY
              : Number.POSITIVE_INFINITY
          : parseFloat(s),
    }),
    jsyaml.types.merge,
  ],
});

/**
 * Where yaml's rules or its JavaScript keys differ: a tag (`!!str`, `!foo`), a directive
 * (`%YAML 1.1`), an explicit key (`? `) or a collection as a key (`[a, b]: x`, which yaml
 * writes as the key "[ a, b ]" and js-yaml as "a,b"), a comment glued to a closing bracket or
 * quote (an error in yaml). Conservative: a match only means "slow".
 */
const NEEDS_YAML = /(?:^|[\s[{,])[!?]|^%|[\]}]\s*:(?:[\s,\]}]|$)|[\]}"']#/m;

/** Where a node's content starts: after spaces, line breaks and comments (js-yaml's separation). */
function contentStart(text: string, from: number): number {
  let i = from;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
    else if (c === 0x23 /* # */) {
      const eol = text.indexOf('\n', i);
      if (eol < 0) return text.length;
      i = eol;
    } else return i;
  }
}

/** How deep maps and lists nest (-1: a null key, which yaml writes "" and js-yaml "null"). */
function depth(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  let deepest = 0;
  if (!Array.isArray(v) && Object.hasOwn(v, 'null')) return -1;
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    const d = depth(x);
    if (d < 0) return -1;
    if (d > deepest) deepest = d;
  }
  return deepest + 1;
}

/**
 * The file's data as `yaml`'s `parseDocument(...).toJS()` would give it, or `undefined` when this
 * file needs the `yaml` library (see above). Never throws.
 */
export function fastYaml(text: string): { data: unknown } | undefined {
  if (NEEDS_YAML.test(text)) return undefined;
  let declined = false;
  const starts: number[] = [];
  let data: unknown;
  try {
    data = jsyaml.load(text, {
      schema: SCHEMA,
      maxDepth: MAX_DEPTH + 2,
      listener(event, state) {
        if (event === 'open') {
          starts.push(state.position);
          return;
        }
        const from = starts.pop() ?? 0;
        if (declined) return;
        // anchors and aliases: yaml counts alias expansions (alias bombs) and reports them
        if (state.anchor !== null) declined = true;
        // a scalar or flow collection over several lines: js-yaml does not check the indentation
        // of its continuation lines as yaml does
        if (state.kind === 'mapping' || state.kind === 'sequence' || state.kind === 'scalar') {
          const at = contentStart(text, from);
          const c = text.charCodeAt(at);
          const block = c === 0x7c /* | */ || c === 0x3e; /* > */
          const flowOrScalar = state.kind === 'scalar' ? !block : c === 0x5b /* [ */ || c === 0x7b; /* { */
          if (flowOrScalar) {
            const eol = text.indexOf('\n', at);
            if (eol >= 0 && eol < state.position) declined = true;
          }
        }
      },
    });
  } catch {
    return undefined;
  }
  if (declined) return undefined;
  const d = depth(data);
  if (d < 0 || d > MAX_DEPTH) return undefined;
  return { data: data === undefined ? null : data };
}
