/**
 * Pieces every dialect loader shares: the result shape a loader returns, path resolution,
 * "did you mean", name/URL/size checks. Cross-VM checks (duplicate names, depends_on targets and
 * cycles, referenced files, undeclared volumes) live in `project.ts`, after all files are loaded.
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { SourceLocation } from '../../schemas/model.js';
import type { VmDraft } from '../../schemas/defaults.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { parseOciRef } from '../images/oci.js';

/** One VM as a dialect loader read it. */
export interface LoadedVm {
  draft: VmDraft;
  /** where the VM is declared (the `vm` node, the service key, ...) */
  loc: SourceLocation;
  /**
   * Locations of fields, keyed by JSON pointer into the canonical VmSpec
   * ("/memory", "/provision/2/script", "/dependsOn/0", "/volumes/1", "/image"). Used to place
   * errors found after loading (ajv on the canonical model, missing files, unknown depends_on).
   * A lookup falls back to the longest matching prefix, then to `loc`.
   */
  fieldLocs: Record<string, SourceLocation>;
  /** settings the loader inferred rather than read (plan shows them), e.g. a replica's host port */
  notes?: string[];
}

/** What a dialect loader returns for one file. It never throws on bad input. */
export interface DialectResult {
  /** project name, when the file declares one (compose `name:`) */
  name?: string;
  vms: LoadedVm[];
  /** top-level named volumes: name -> size GiB */
  volumes: Record<string, { size: number }>;
  volumeLocs: Record<string, SourceLocation>;
  /**
   * the file's project-wide `warm` (top-level `warm` in tend.yaml / holos.yaml / vms.yml, a
   * top-level `warm` node in VMFile.kdl): the default of every VM of the file that sets none
   */
  warm?: { value: boolean; loc: SourceLocation };
  diagnostics: Diagnostic[];
}

export type DialectLoader = (file: string, text: string, env?: NodeJS.ProcessEnv) => DialectResult;

/** Resolve a path from a project file: `~` expanded, relative paths against the file's folder. */
export function resolvePath(p: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (p === '~') return env.HOME || homedir();
  if (p.startsWith('~/')) return resolve(env.HOME || homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

export const IMAGE_FORMATS = ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx'] as const;

/** Why `url` is not a usable image URL, or null. */
export function urlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a valid URL`;
  }
  if (u.protocol === 'oci:') {
    const ref = parseOciRef(url);
    return typeof ref === 'string' ? ref : null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'file:') {
    return `"${url}" uses ${u.protocol.replace(':', '')}: images are downloaded from http, https and file URLs, or pulled from oci:// registries`;
  }
  if ((u.protocol === 'http:' || u.protocol === 'https:') && !u.hostname) return `"${url}" has no host`;
  return null;
}

/** A catalog name looks like `debian:12`, `ubuntu:noble`, `alpine`. Paths contain "/" or a dot-extension. */
export function looksLikeCatalogName(ref: string): boolean {
  return /^[a-z][a-z0-9-]*(:[a-z0-9.-]+)?$/.test(ref);
}

/** Checksum as written in files: "sha256:<hex>", "sha512:<hex>", or a bare hex of either length. */
export function normalizeChecksum(s: string): string | null {
  const m = /^(?:(sha256|sha512)[:=])?([0-9a-fA-F]+)$/.exec(s.trim());
  if (!m) return null;
  const hex = m[2].toLowerCase();
  const algo = m[1] ?? (hex.length === 64 ? 'sha256' : hex.length === 128 ? 'sha512' : undefined);
  if (algo === 'sha256' && hex.length === 64) return `sha256:${hex}`;
  if (algo === 'sha512' && hex.length === 128) return `sha512:${hex}`;
  return null;
}

/** Locate an error on a canonical-model path: exact, longest prefix, else the VM's own location. */
export function locateField(vm: LoadedVm, pointer: string): SourceLocation {
  let p = pointer;
  for (;;) {
    const hit = vm.fieldLocs[p];
    if (hit) return hit;
    const i = p.lastIndexOf('/');
    if (i <= 0) return vm.loc;
    p = p.slice(0, i);
  }
}

/** An error diagnostic at file:line:column. */
export function errorAt(file: string, line: number, column: number, message: string, hint?: string): Diagnostic {
  return { file, line, column, message, ...(hint ? { hint } : {}), severity: 'error' };
}
