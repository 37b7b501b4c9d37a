/**
 * The tend.yaml side of the field tables (fields.ts): the reader state, reporting at a YAML
 * path (silent where the JSON Schema check already complained), the readers rows share, and the
 * loop that reads a service through a table in compose's words.
 */
import { statSync } from 'node:fs';
import { parseDuration, diskSizeToGiB } from '../../schemas/units.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { resolvePath } from './common.js';
import { specialFile } from './limits.js';
import { absurdSize, describeBytes, GIB, HOLOS_MIN_BYTES, holosBytes } from './sizes.js';
import { applyField, rangeWords, type Draft, type Field, type Located } from './fields.js';
import type { YamlPath } from './compose-yaml.js';
import type { PathLocator } from './compose-merge.js';
import { context, fieldName } from './compose-schema.js';

export interface ComposeContext {
  file: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  loc: PathLocator;
  diagnostics: Diagnostic[];
  /** JSON pointers (into the YAML) ajv already complained about */
  flagged: Set<string>;
  /** replicas of every service of this file, for depends_on expansion */
  replicasOf: Map<string, number>;
  /** the file is a holos.yaml: holos' meanings where they differ (sizes in bytes, TCP-only ports) */
  holos: boolean;
}

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
export const pointer = (p: YamlPath): string =>
  p.length ? '/' + p.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/') : '';

export function report(ctx: ComposeContext, path: YamlPath, message: string, hint?: string, at: 'key' | 'value' = 'value'): void {
  if (ctx.flagged.has(pointer(path))) return;
  const where = at === 'key' ? ctx.loc.key(path) : ctx.loc.value(path);
  ctx.diagnostics.push({ ...where, message, ...(hint ? { hint } : {}), severity: 'error' });
}

/** A warning at a YAML path: the file is valid, but something deserves a look. */
export function warn(ctx: ComposeContext, path: YamlPath, message: string, hint?: string): void {
  ctx.diagnostics.push({ ...ctx.loc.value(path), message, ...(hint ? { hint } : {}), severity: 'warning' });
}

/** What a row reads: one service (or a map inside it) and where it is in the file. */
export interface Svc {
  raw: Obj;
  base: YamlPath;
  ctx: ComposeContext;
  draft: Draft;
}

export type ComposeField = Field<Svc, ComposeContext>;

/** The YAML path of a row's key under the service: `vm.vcpu` → [...base, 'vm', 'vcpu']. */
export const pathOf = (s: Svc, f: ComposeField): YamlPath => [...s.base, ...f.key.split('.')];

function valueOf(s: Svc, f: ComposeField): unknown {
  let v: unknown = s.raw;
  for (const k of f.key.split('.')) v = isObj(v) ? v[k] : undefined;
  return v;
}

/** Reads the service through `table`; a number outside the canonical limits is reported at its value. */
export function readFields(s: Svc, table: readonly ComposeField[]): void {
  for (const f of table) {
    applyField(
      s.draft,
      f,
      s,
      s.ctx,
      (v, broken, field) => {
        const words = `${field.key} in ${context(s.base)} ${rangeWords(broken, field.unit)}`;
        report(s.ctx, pathOf(s, field), field.unit === 's' && broken.rel !== 'max' ? words : `${words}, not ${String(v.value)}`);
      },
      (v, field) =>
        report(
          s.ctx,
          pathOf(s, field),
          `${field.key} in ${context(s.base)} is not ${field.form?.what ?? 'valid'}: "${v.value}"`,
          field.form?.hint,
        ),
    );
  }
}

/** A row reader from a check of the raw value: the value, placed at its YAML position. */
export const when =
  (ok: (v: unknown, s: Svc, f: ComposeField) => boolean) =>
  (s: Svc, _c: ComposeContext, f: ComposeField): Located<unknown> | undefined => {
    const v = valueOf(s, f);
    return v !== undefined && ok(v, s, f) ? { value: v, loc: s.ctx.loc.value(pathOf(s, f)) } : undefined;
  };

export const int = when((v) => typeof v === 'number' && Number.isInteger(v));
export const nonEmpty = when((v) => typeof v === 'string' && v !== '');
export const bool = when((v) => typeof v === 'boolean');
export const stringList = when((v) => strings(v) !== undefined);
/** A string the JSON Schema checked (an enum): taken unless it was flagged. */
export const checked = when((v, s, f) => typeof v === 'string' && !s.ctx.flagged.has(pointer(pathOf(s, f))));

/** A duration ("30s", "1m30s", 90), reported at its value when it is not one. */
export function duration(ctx: ComposeContext, path: YamlPath, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = parseDuration(v);
  if (s === null) {
    report(
      ctx,
      path,
      `${fieldName(path)} in ${context(path.slice(0, -1))} is not a duration: ${typeof v === 'string' ? `"${v}"` : v}`,
      'write e.g. "30s", "1m30s", "500ms" or a number of seconds',
    );
    return undefined;
  }
  return s;
}

export const durationField = (s: Svc, _c: ComposeContext, f: ComposeField): Located<number> | undefined => {
  const path = pathOf(s, f);
  const v = duration(s.ctx, path, valueOf(s, f));
  return v === undefined ? undefined : { value: v, loc: s.ctx.loc.value(path) };
};

/** A size in whole GiB ("20G", 20; holos.yaml: bytes), or undefined after reporting why not. */
export function sizeGiB(ctx: ComposeContext, path: YamlPath, v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  if (typeof v === 'number' && (!Number.isInteger(v) || v < 1)) return undefined; // ajv said so
  const name = fieldName(path);
  if (ctx.holos) return holosSizeGiB(ctx, path, v, name);
  const g = diskSizeToGiB(v);
  const absurd = g === null ? null : absurdSize(g, (x) => `${name}: ${x}G`);
  if (absurd) {
    report(ctx, path, `${name} ${absurd.message}`, absurd.hint);
    return undefined;
  }
  if (g === null) {
    report(ctx, path, `${name} "${v}" is not a size`, `write a number of GiB (${name}: 20) or a size with a unit (${name}: 20G)`);
    return undefined;
  }
  if (g <= 0) {
    report(ctx, path, `${name} must be at least 1 GiB, not ${v}`);
    return undefined;
  }
  if (!Number.isInteger(g)) {
    report(ctx, path, `${name} must be a whole number of GiB: ${v} is ${g} GiB`, `write ${name}: ${Math.ceil(g)}G`);
    return undefined;
  }
  return g;
}

/** holos reads a bare number as bytes and K/M/G/T as powers of 1024; tend keeps whole GiB (rounded up). */
function holosSizeGiB(ctx: ComposeContext, path: YamlPath, v: string | number, name: string): number | undefined {
  const bytes = holosBytes(v);
  if (bytes === null) {
    report(ctx, path, `${name} "${v}" is not a size`, `write a size with a unit (${name}: 20G, ${name}: 512M) or a number of bytes`);
    return undefined;
  }
  if (bytes < HOLOS_MIN_BYTES) {
    report(
      ctx,
      path,
      `${name} ${v} is ${describeBytes(bytes)}: in a holos.yaml a bare number is bytes (as in holos), and the smallest size is 1 MiB`,
      `did you mean ${name}: ${v}G?`,
    );
    return undefined;
  }
  const g = Math.ceil(bytes / GIB);
  const absurd = absurdSize(g, (x) => `${name}: ${x}G`);
  if (absurd) {
    report(ctx, path, `${name} ${absurd.message}`, absurd.hint);
    return undefined;
  }
  if (g * GIB !== bytes)
    warn(ctx, path, `${name} ${v} (${describeBytes(bytes)}) is rounded up to ${g} GiB: tend sizes disks and volumes in whole GiB`);
  return g;
}

export const sizeField = (s: Svc, _c: ComposeContext, f: ComposeField): Located<number> | undefined => {
  const path = pathOf(s, f);
  const v = valueOf(s, f);
  if (v === undefined) return undefined;
  const g = sizeGiB(s.ctx, path, v);
  return g === undefined ? undefined : { value: g, loc: s.ctx.loc.value(path) };
};

/** A referenced local file: resolved, and reported at the value when it does not exist. */
export function localPath(
  ctx: ComposeContext,
  path: YamlPath,
  value: string,
  what: string,
  kind: 'file' | 'dir' | 'any',
  maxBytes?: number,
): string | null {
  const abs = resolvePath(value, ctx.dir, ctx.env);
  let st;
  try {
    st = statSync(abs);
  } catch {
    report(
      ctx,
      path,
      `${what} "${value}" does not exist (looked for ${abs})`,
      'paths are relative to the folder of this file; ~ is your home folder',
    );
    return null;
  }
  if (kind === 'file' && st.isDirectory()) {
    report(ctx, path, `${what} "${value}" is not a file`);
    return null;
  }
  if (kind === 'dir' && !st.isDirectory()) {
    report(ctx, path, `${what} "${value}" is not a folder`);
    return null;
  }
  const problem = specialFile(st, what, value, kind, maxBytes);
  if (problem) {
    report(ctx, path, problem);
    return null;
  }
  return abs;
}

/** A string naming a file that must exist: its absolute path. */
export const fileField =
  (what: string) =>
  (s: Svc, _c: ComposeContext, f: ComposeField): Located<string> | undefined => {
    const v = valueOf(s, f);
    if (typeof v !== 'string' || v === '') return undefined;
    const path = pathOf(s, f);
    const abs = localPath(s.ctx, path, v, what, 'file');
    return abs ? { value: abs, loc: s.ctx.loc.value(path) } : undefined;
  };
