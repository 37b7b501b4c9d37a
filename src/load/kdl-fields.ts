/**
 * The VMFile.kdl side of the field tables (fields.ts): the reader state a row gets, the readers
 * rows share (a string, a word from a set, a whole number, a duration, a path that must exist),
 * and the loop that reads a block's children through a table, in VMFile.kdl's words.
 */
import { statSync } from 'node:fs';
import type { SourceLocation } from '../../schemas/model.js';
import { parseDuration } from '../../schemas/units.js';
import { resolvePath } from './common.js';
import { specialFile } from './limits.js';
import { applyField, limitText, limitsAt, type Draft, type Field, type Located } from './fields.js';
import type { KNode } from './kdl-parse.js';
import { example, quote, type KdlReader } from './kdl-read.js';

export interface KdlContext {
  file: string;
  dir: string;
  env: NodeJS.ProcessEnv;
}

/** What a row's reader works with: the diagnostics sink, the file's context and the VM's draft. */
export interface VmCtx {
  r: KdlReader;
  ctx: KdlContext;
  draft: Draft;
}

export type KdlField = Field<KNode, VmCtx>;

/** Reads `kids` through `table` into `draft` (the VM's, or a block's own), reporting unknown and repeated nodes. */
export function readBlock(c: VmCtx, parent: string, kids: KNode[], table: readonly KdlField[], draft: Draft = c.draft): void {
  const known = table.map((f) => f.key);
  const repeatable = table.filter((f) => f.repeatable).map((f) => f.key);
  const sub = { ...c, draft };
  for (const n of c.r.children(parent, kids, known, repeatable)) {
    const f = table.find((x) => x.key === n.name) as KdlField;
    applyField(
      draft,
      f,
      n,
      sub,
      (v, broken, field) => {
        const custom = broken.rel !== 'max' ? field.tooSmall?.(v.value) : undefined;
        if (custom) c.r.error(v.loc, custom.message, custom.hint);
        else if (broken.rel === 'max')
          c.r.error(
            v.loc,
            `${field.key} must be at most ${limitText(broken.limit, field.unit)}, not ${field.unit === 's' ? `${v.value}s` : v.value}`,
            field.unit === 's' ? `write ${field.key} "30s"` : example(field.key),
          );
        else if (field.unit === 's') c.r.error(v.loc, `${field.key} must be more than 0s`, `write ${field.key} "10s"`);
        else {
          const unit = field.unit ? ` (in ${field.unit})` : '';
          c.r.error(
            v.loc,
            v.value <= 0
              ? `${field.key} must be more than 0, not ${v.value}`
              : `${field.key} must be at least ${broken.limit}${unit}, not ${v.value}`,
            example(field.key),
          );
        }
      },
      (v, field) =>
        c.r.error(v.loc, `${field.key} ${quote(v.value)} is not ${field.form?.what ?? 'valid'}`, field.form?.hint ?? example(field.key)),
    );
  }
}

/** A VM name made valid, for the hint. */
export function suggestName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return s || 'web';
}

/** Readers rows share. */
export const str = (n: KNode, c: VmCtx): Located<string> | undefined => c.r.string(n);

export const choice =
  <T extends string>(choices: readonly T[]) =>
  (n: KNode, c: VmCtx): Located<T> | undefined =>
    c.r.choice(n, choices);

/** A whole number; `fromString` says what a string such as "2G" should have been. */
export const int =
  (fromString?: (s: string) => { message: string; hint: string } | undefined) =>
  (n: KNode, c: VmCtx, f: KdlField): Located<number> | undefined =>
    c.r.wholeNumber(n, {
      range: false,
      min: limitsAt(f.pointer).minimum ?? 1,
      ...(f.unit ? { unit: f.unit } : {}),
      ...(fromString ? { fromString } : {}),
    });

/** A duration: "30s", "1m30s", or a number of seconds. */
export function duration(n: KNode, c: VmCtx): Located<number> | undefined {
  if (!c.r.noBlock(n)) return undefined;
  const v = c.r.one(n);
  if (!v) return undefined;
  const secs = typeof v.value === 'string' || typeof v.value === 'number' ? parseDuration(v.value) : null;
  if (secs === null) {
    c.r.error(v.loc, `${n.name} must be a duration such as "30s", "1m30s" or "500ms", not ${quote(v.value)}`, `write ${n.name} "30s"`);
    return undefined;
  }
  return { value: secs, loc: v.loc };
}

/** A path that must exist, relative to the file's folder; its absolute form. */
export function existingPath(
  c: VmCtx,
  v: Located<string>,
  what: string,
  kind: 'file' | 'folder' | 'any' = 'file',
  maxBytes?: number,
): string | undefined {
  const abs = resolvePath(v.value, c.ctx.dir, c.ctx.env);
  let st;
  try {
    st = statSync(abs);
  } catch {
    c.r.error(
      v.loc,
      `${what} "${v.value}" does not exist (looked for ${abs})`,
      'relative paths are resolved against the folder of VMFile.kdl; "~" is your home folder',
    );
    return undefined;
  }
  if (kind === 'file' && st.isDirectory()) {
    c.r.error(v.loc, `${what} "${v.value}" is a folder, not a file`);
    return undefined;
  }
  const problem = specialFile(st, what, v.value, kind, maxBytes);
  if (problem) {
    c.r.error(v.loc, problem);
    return undefined;
  }
  if (kind === 'folder' && !st.isDirectory()) {
    c.r.error(v.loc, `${what} "${v.value}" is a file, not a folder`);
    return undefined;
  }
  return abs;
}

/** A string naming a file that must exist: its absolute path. */
export const file =
  (what: string, maxBytes?: number) =>
  (n: KNode, c: VmCtx): Located<string> | undefined => {
    const v = c.r.string(n);
    const abs = v && existingPath(c, v, what, 'file', maxBytes);
    return v && abs ? { value: abs, loc: v.loc } : undefined;
  };

/** Every string value of the node appended to the list at the row's pointer. */
export function list(n: KNode, c: VmCtx, f: KdlField): undefined {
  for (const v of c.r.strings(n)) c.draft.push(f.pointer, v.value, v.loc);
  return undefined;
}

export type { SourceLocation };
