/**
 * Pieces every dialect loader shares: the result shape a loader returns, path resolution,
 * "did you mean", name/URL/size checks. Cross-VM checks (duplicate names, depends_on targets and
 * cycles, referenced files, undeclared volumes) live in `project.ts`, after all files are loaded.
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { SourceLocation } from '../../schemas/model.js';
import type { VmDraft } from '../../schemas/defaults.js';
import type { Diagnostic } from './diagnostic.js';

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
}

/** What a dialect loader returns for one file. It never throws on bad input. */
export interface DialectResult {
  /** project name, when the file declares one (compose `name:`) */
  name?: string;
  vms: LoadedVm[];
  /** top-level named volumes: name -> size GiB */
  volumes: Record<string, { size: number }>;
  volumeLocs: Record<string, SourceLocation>;
  diagnostics: Diagnostic[];
}

export type DialectLoader = (file: string, text: string, env?: NodeJS.ProcessEnv) => DialectResult;

export const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `name` cannot be a VM/file/host name, or null when it can. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'the name is empty';
  if (name.length > 63) return `the name "${name}" is longer than 63 characters`;
  if (NAME_RE.test(name)) return null;
  if (/[A-Z]/.test(name) && NAME_RE.test(name.toLowerCase())) return `the name "${name}" has upper-case letters (host names are lower-case)`;
  return `the name "${name}" cannot be a file name and a host name: use lower-case letters, digits and "-" (not at either end)`;
}

/** Suggest the closest candidate (Damerau-free Levenshtein, distance <= max(2, len/3)). */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestD <= limit ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

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
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'file:') {
    return `"${url}" uses ${u.protocol.replace(':', '')}: only http, https and file URLs can be downloaded`;
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

/**
 * Parse a duration as compose writes them ("30s", "1m30s", "500ms", "2h") or a bare number of
 * seconds. Returns seconds, or null when it is not a duration.
 */
export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : null;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : m[2] === 'ms' ? n / 1000 : n / 1e6;
    matched = re.lastIndex;
  }
  return matched === s.length && s.length > 0 ? total : null;
}

/**
 * A memory size written with a unit ("2G", "512M", "2GiB") → MiB, for the hint that says what to
 * write instead. null when it is not such a size.
 */
export function memoryWithUnitToMiB(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt])(i?b)?$/i.exec(s.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const mult = { k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 }[m[2].toLowerCase() as 'k' | 'm' | 'g' | 't'];
  const mib = n * mult;
  return Number.isInteger(mib) ? mib : Math.round(mib);
}

/** A disk size ("20G", "20GiB", 20) → GiB integer, or null. */
export function diskSizeToGiB(v: string | number): number | null {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*([mgt])?(i?b)?$/i.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'g').toLowerCase();
  return unit === 'g' ? n : unit === 't' ? n * 1024 : n / 1024;
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
