/**
 * `-f a.yaml -f b.yaml`: compose's merge of several files into one model (compose spec, "Merge"),
 * each file already interpolated. Maps merge key by key, the later file winning on conflicts;
 * sequences append, except healthcheck `test` (replaced, like compose's shell commands) and the
 * sequences with a unique key: `ports` (address, host port, guest port, protocol) and `volumes`
 * (the target path), where a later entry with the same key replaces the earlier one;
 * `depends_on` lists keep each name once. `!reset` removes a value, `!override` replaces it
 * whole. Every value keeps the file and path it came from, so an error in the merged model is
 * reported in the file that holds the offending text.
 */
import type { SourceLocation } from '../../schemas/model.js';
import type { YamlLocator, YamlPath } from './compose-yaml.js';
import type { MergeTag } from './compose-vars.js';

/** Where a path of the (merged) model is in the files: compose-ctx's `loc`. */
export interface PathLocator {
  value(path: YamlPath): SourceLocation;
  key(path: YamlPath): SourceLocation;
}

export interface MergePart {
  data: Record<string, unknown>;
  loc: YamlLocator;
  tags: Map<string, MergeTag>;
}

/** Provenance: the part and path a value came from; `kids` when it was merged from several. */
interface Prov {
  part: number;
  path: YamlPath;
  kids?: Map<string, Prov>;
}

const REMOVED = Symbol('removed');
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function mergeParts(parts: MergePart[]): { data: Obj; loc: PathLocator } {
  if (parts.length === 1 && parts[0].tags.size === 0) return { data: parts[0].data, loc: parts[0].loc };
  let data: unknown = undefined;
  let prov: Prov = { part: 0, path: [] };
  parts.forEach((part, i) => {
    const [v, p] = merge(data, prov, part.data, { part: i, path: [] }, part.tags);
    data = v === REMOVED ? {} : v;
    prov = p;
  });
  return {
    data: isObj(data) ? data : {},
    loc: new MergedLocator(
      parts.map((p) => p.loc),
      prov,
    ),
  };
}

function child(p: Prov, seg: string | number): Prov {
  return p.kids?.get(String(seg)) ?? { part: p.part, path: [...p.path, seg] };
}

/** The value with every `!reset` under it removed (a value new in this file). */
function stripResets(v: unknown, path: YamlPath, tags: Map<string, MergeTag>): unknown {
  if (tags.size === 0) return v;
  if (tags.get(path.join('\0')) === 'reset') return REMOVED;
  if (Array.isArray(v)) return v.map((x, i) => stripResets(x, [...path, i], tags)).filter((x) => x !== REMOVED);
  if (isObj(v)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) {
      const s = stripResets(x, [...path, k], tags);
      if (s !== REMOVED) out[k] = s;
    }
    return out;
  }
  return v;
}

function merge(base: unknown, bp: Prov, over: unknown, op: Prov, tags: Map<string, MergeTag>): [unknown, Prov] {
  const tag = tags.get(op.path.join('\0'));
  if (tag === 'reset') return [REMOVED, op];
  if (base === undefined || tag === 'override') return [stripResets(over, op.path, tags), op];
  if (isObj(base) && isObj(over)) {
    const out: Obj = { ...base };
    const kids = new Map<string, Prov>();
    for (const k of Object.keys(base)) kids.set(k, child(bp, k));
    for (const [k, v] of Object.entries(over)) {
      const [m, p] = merge(base[k], child(bp, k), v, { part: op.part, path: [...op.path, k] }, tags);
      if (m === REMOVED) {
        delete out[k];
        kids.delete(k);
      } else {
        out[k] = m;
        kids.set(k, p);
      }
    }
    return [out, { part: bp.part, path: bp.path, kids }];
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const rule = sequenceRule(op.path);
    if (rule === 'replace') return [stripResets(over, op.path, tags), op];
    const items: { v: unknown; p: Prov }[] = base.map((v, i) => ({ v, p: child(bp, i) }));
    over.forEach((v, j) => {
      const path = [...op.path, j];
      const s = stripResets(v, path, tags);
      if (s === REMOVED) return;
      const item = { v: s, p: { part: op.part, path } };
      const key = rule ? rule(s) : undefined;
      const same = key === undefined ? -1 : items.findIndex((x) => rule?.(x.v) === key);
      if (same >= 0) items[same] = item;
      else items.push(item);
    });
    const kids = new Map<string, Prov>(items.map((x, i) => [String(i), x.p]));
    return [items.map((x) => x.v), { part: bp.part, path: bp.path, kids }];
  }
  return [stripResets(over, op.path, tags), op];
}

type KeyOf = (v: unknown) => string | undefined;

/** How a sequence merges, by its path: appended (null), replaced, or unique by a key. */
function sequenceRule(path: YamlPath): 'replace' | KeyOf | null {
  if (path.length < 3 || path[0] !== 'services') return null;
  const rest = path.slice(2).join('.');
  if (rest === 'healthcheck.test') return 'replace';
  if (rest === 'ports') return portKey;
  if (rest === 'volumes') return volumeKey;
  if (rest === 'depends_on') return (v) => (typeof v === 'string' ? v : undefined);
  return null;
}

/** "[addr:][host:]guest[/proto]" → its identity (compose: ip, published, target, protocol). */
function portKey(v: unknown): string | undefined {
  if (typeof v === 'number') return `||${v}|tcp`;
  if (typeof v !== 'string') return undefined;
  const m = /^(?:(\[[^\]]*\]|[0-9.]+):)?(?:([0-9]*):)?([0-9]+)(?:\/(\w+))?$/.exec(v.trim());
  if (!m) return v;
  return `${m[1] ?? ''}|${m[2] ?? ''}|${m[3]}|${(m[4] ?? 'tcp').toLowerCase()}`;
}

/** "source:/target[:mode]" → the target path (compose: volumes are unique by target). */
function volumeKey(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const parts = v.split(':');
  return parts.length >= 2 ? parts[1].replace(/\/+$/, '') || '/' : v;
}

class MergedLocator implements PathLocator {
  constructor(
    private readonly locs: YamlLocator[],
    private readonly root: Prov,
  ) {}

  private at(path: YamlPath): { loc: YamlLocator; path: YamlPath } {
    let cur = this.root;
    let i = 0;
    while (cur.kids && i < path.length) {
      const next = cur.kids.get(String(path[i]));
      if (!next) break;
      cur = next;
      i++;
    }
    return { loc: this.locs[cur.part], path: [...cur.path, ...path.slice(i)] };
  }

  value(path: YamlPath): SourceLocation {
    const a = this.at(path);
    return a.loc.value(a.path);
  }

  key(path: YamlPath): SourceLocation {
    const a = this.at(path);
    return a.loc.key(a.path);
  }
}
