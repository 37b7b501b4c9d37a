/**
 * The vms.yml (ov) side of the field tables (fields.ts): the reader state, reporting errors and
 * warnings at a YAML path in ov's words ("ram of vm arch"), the readers rows share, and the loop
 * that reads one map of the file through a table. Every key of a map is either a row (read into
 * the canonical model), a key ov has and tend does not act on (a warning that names it and says
 * why), or unknown (an error with "did you mean").
 */
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { didYouMean } from '../../schemas/names.js';
import { applyField, rangeWords, type Draft, type Field, type Located } from './fields.js';
import type { YamlLocator, YamlPath } from './compose-yaml.js';

export interface VmsContext {
  file: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  loc: YamlLocator;
  diagnostics: Diagnostic[];
}

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One map of the file being read: its value, where it is, the VM's draft and its source kind. */
export interface Node {
  raw: Obj;
  path: YamlPath;
  ctx: VmsContext;
  draft: Draft;
  /** the entity (VM) name */
  vm: string;
  /** source.kind as read (undefined when missing or wrong) */
  kind: 'cloud_image' | 'bootc' | undefined;
  /** the entity's map, for rows that look at siblings */
  entity: Obj;
}

export type VmsField = Field<Node, VmsContext>;

/** Where a path is, in words: "vm arch", "ssh of vm arch", "the top level". */
export function where(path: YamlPath): string {
  if (path.length === 0) return 'the top level';
  if (path[0] === 'vms' && path.length >= 2) {
    const vm = `vm ${String(path[1])}`;
    const inner = path.slice(2).map((s) => (typeof s === 'number' ? `[${s + 1}]` : s));
    return inner.length ? `${inner.join('.').replace(/\.\[/g, '[')} of ${vm}` : vm;
  }
  return path.filter((s) => typeof s === 'string').join('.');
}

export function report(
  ctx: VmsContext,
  path: YamlPath,
  message: string,
  hint?: string,
  at: 'key' | 'value' = 'value',
  severity: 'error' | 'warning' = 'error',
): void {
  const loc = at === 'key' ? ctx.loc.key(path) : ctx.loc.value(path);
  ctx.diagnostics.push({ ...loc, message, ...(hint ? { hint } : {}), severity });
}

export const warn = (ctx: VmsContext, path: YamlPath, message: string, hint?: string): void =>
  report(ctx, path, message, hint, 'key', 'warning');

/** What a YAML value is, in words, for "must be X, not Y". */
export function show(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (typeof v === 'string') return `"${v}"`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return String(v);
}

/** The YAML path of a row's key under the node. */
export const pathOf = (n: Node, f: VmsField): YamlPath => [...n.path, f.key];
export const valueOf = (n: Node, f: VmsField): unknown => n.raw[f.key];
/** The field's name in messages: "cpus of vm arch". */
export const named = (n: Node, key: string): string => where([...n.path, key]);

/**
 * Keys ov has that tend does not act on, per map: why, as a warning. A function of the value
 * may say nothing (undefined) when the value means what tend does anyway.
 */
export type Ignored = Record<string, string | ((v: unknown) => string | undefined)>;

/**
 * Reads one map through `table`: unknown keys are errors (with "did you mean"), keys in
 * `ignored` warnings; every row with a value is applied. Numbers outside the canonical limits
 * are reported at the value in ov's words.
 */
export function readMap(n: Node, table: readonly VmsField[], ignored: Ignored = {}, advice: Record<string, string> = {}): void {
  const known = table.map((f) => f.key);
  for (const key of Object.keys(n.raw)) {
    if (known.includes(key)) continue;
    const why = ignored[key];
    if (why !== undefined) {
      const text = typeof why === 'function' ? why(n.raw[key]) : why;
      if (text) warn(n.ctx, [...n.path, key], `${named(n, key)} is not applied by tend: ${text}`);
      continue;
    }
    const tip = advice[key];
    const guess = tip ? undefined : didYouMean(key, [...known, ...Object.keys(ignored)]);
    report(
      n.ctx,
      [...n.path, key],
      `unknown key \`${key}\` in ${where(n.path)}${guess ? `; did you mean \`${guess}\`?` : ''}`,
      tip ?? (guess ? undefined : `known keys: ${known.join(', ')}`),
      'key',
    );
  }
  for (const f of table) {
    if (n.raw[f.key] === undefined) continue;
    applyField(
      n.draft,
      f,
      n,
      n.ctx,
      (v, broken, field) => report(n.ctx, pathOf(n, field), `${named(n, field.key)} ${rangeWords(broken, field.unit)}, not ${v.value}`),
      (v, field) =>
        report(n.ctx, pathOf(n, field), `${named(n, field.key)} is not ${field.form?.what ?? 'valid'}: "${v.value}"`, field.form?.hint),
    );
  }
}

/** A reader from a check of the value: the value (or what `map` makes of it), at its position; else an error. */
export const expect =
  (what: string, ok: (v: unknown) => boolean, map: (v: never) => unknown = (v) => v, hint?: (n: Node, f: VmsField) => string) =>
  (n: Node, _c: VmsContext, f: VmsField): Located<unknown> | undefined => {
    const v = valueOf(n, f);
    if (ok(v)) return { value: map(v as never), loc: n.ctx.loc.value(pathOf(n, f)) };
    report(
      n.ctx,
      pathOf(n, f),
      `${named(n, f.key)} must be ${what}, not ${show(v)}`,
      hint?.(n, f) ?? (f.example ? `write ${f.example}` : undefined),
    );
    return undefined;
  };

export const int = expect('a whole number', (v) => typeof v === 'number' && Number.isInteger(v));
export const str = expect('a string', (v) => typeof v === 'string' && v.trim() !== '');
export const bool = expect('true or false', (v) => typeof v === 'boolean');
export const strList = expect('a list of strings', (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'));

/** One of `values` (ov's spelling) → the canonical value; a near miss gets "did you mean". */
export const oneOf =
  (values: Record<string, unknown>) =>
  (n: Node, _c: VmsContext, f: VmsField): Located<unknown> | undefined => {
    const v = valueOf(n, f);
    const allowed = Object.keys(values);
    if (typeof v === 'string' && Object.hasOwn(values, v)) return { value: values[v], loc: n.ctx.loc.value(pathOf(n, f)) };
    const guess = typeof v === 'string' ? didYouMean(v, allowed) : undefined;
    report(
      n.ctx,
      pathOf(n, f),
      `${named(n, f.key)} must be one of ${allowed.join(', ')}, not ${show(v)}`,
      guess ? `did you mean ${guess}?` : undefined,
    );
    return undefined;
  };

/** A reader that places values itself. */
export const self = (key: string, fn: (n: Node) => void): VmsField => ({
  key,
  pointer: '',
  read: (n) => {
    fn(n);
    return undefined;
  },
});

/** The map under `key` as a node of its own (reported when it is not a map). */
export function child(n: Node, key: string): Node | undefined {
  const v = n.raw[key];
  if (isObj(v)) return { ...n, raw: v, path: [...n.path, key] };
  report(n.ctx, [...n.path, key], `${named(n, key)} must be a map of keys, not ${show(v)}`);
  return undefined;
}
