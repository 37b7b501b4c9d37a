/**
 * YAML plumbing for the compose and vms.yml loaders: read a file's data (fast, without positions,
 * when it is plain: yaml-fast.ts), else parse with positions and turn YAML syntax errors into
 * diagnostics at the right place; and find the line:column of any path in the document.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import type { SourceLocation } from '../../schemas/model.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { MAX_DEPTH } from './limits.js';
import { fastYaml } from './yaml-fast.js';

export type YamlPath = readonly (string | number)[];

export interface ParsedYaml {
  doc: Document;
  locator: YamlLocator;
  diagnostics: Diagnostic[];
}

/** A file's data and where its paths are, or (data undefined) the diagnostics of why it cannot be read. */
export interface ReadYaml {
  data?: unknown;
  locator: YamlLocator;
  diagnostics: Diagnostic[];
}

/**
 * A project file's data. A plain file is read fast and its positions are found only when a
 * diagnostic asks for one (validating 5,000 VMs took ~1.5 s in the yaml library's parser); any
 * other file is parsed with positions at once, with the yaml library's own checks.
 */
export function readYaml(file: string, text: string): ReadYaml {
  const fast = readYamlFast(file, text);
  if (fast) return { ...fast, diagnostics: [] };
  const { doc, locator, diagnostics } = parseYaml(file, text);
  if (diagnostics.length) return { locator, diagnostics };
  try {
    return { data: doc.toJS({ maxAliasCount: 100 }), locator, diagnostics: [] };
  } catch (err) {
    // aliases and merge keys are resolved here: say where the one that fails is
    return { locator, diagnostics: [aliasProblem(file, doc, locator, err as Error)] };
  }
}

/** A plain file's data, its positions found on demand; undefined when the file needs parsing with positions. */
export function readYamlFast(file: string, text: string): { data: unknown; locator: YamlLocator } | undefined {
  const fast = fastYaml(text);
  return fast ? { data: fast.data, locator: YamlLocator.lazy(file, text) } : undefined;
}

function parseWithPositions(text: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  // Duplicate keys are found below in one pass: the yaml library's own check compares every key
  // with every earlier one of its map (20,000 services took seconds).
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, strict: true, merge: true, logLevel: 'error' });
  return { doc, lineCounter };
}

export function parseYaml(file: string, text: string): ParsedYaml {
  const { doc, lineCounter } = parseWithPositions(text);
  const locator = new YamlLocator(file, () => ({ doc, lc: lineCounter }));
  const errors = doc.errors.map((e) => ({ code: e.code as string, message: e.message, pos: e.pos[0] }));
  if (errors.length === 0) errors.push(...duplicateKeys(doc));
  if (errors.length === 0) errors.push(...tooDeep(doc));
  const diagnostics = errors.map((e) => syntaxDiagnostic(file, text, lineCounter, e.code, e.message, e.pos));
  return { doc, locator, diagnostics };
}

/** The first map or list nested deeper than MAX_DEPTH. */
function tooDeep(doc: Document): { code: string; message: string; pos: number }[] {
  let hit: Node | undefined;
  visit(doc, (_key, node, path) => {
    if (hit) return visit.BREAK;
    if (!isMap(node) && !isSeq(node)) return undefined;
    if (path.filter((p) => isMap(p) || isSeq(p)).length + 1 > MAX_DEPTH) hit = node;
    return undefined;
  });
  return hit ? [{ code: 'TOO_DEEP', message: 'too deep', pos: hit.range?.[0] ?? 0 }] : [];
}

/** Keys given twice in one map (merge keys `<<` aside), at the second one. */
function duplicateKeys(doc: Document): { code: string; message: string; pos: number }[] {
  const out: { code: string; message: string; pos: number }[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key) || typeof pair.key.value === 'symbol' || pair.key.value === '<<') continue;
        if (seen.has(pair.key.value))
          out.push({ code: 'DUPLICATE_KEY', message: 'Map keys must be unique', pos: pair.key.range?.[0] ?? 0 });
        seen.add(pair.key.value);
      }
    },
  });
  return out;
}

function syntaxDiagnostic(file: string, text: string, lc: LineCounter, code: string, raw: string, pos: number): Diagnostic {
  const at = (offset: number, message: string, hint?: string): Diagnostic => {
    const { line, col } = lc.linePos(offset);
    return { file, line, column: col, message, ...(hint ? { hint } : {}), severity: 'error' };
  };
  switch (code) {
    case 'TAB_AS_INDENT': {
      const tab = text.indexOf('\t', pos);
      return at(
        tab >= 0 && tab - pos < 200 ? tab : pos,
        'a tab is used for indentation; YAML indents with spaces only',
        'replace the tab with spaces',
      );
    }
    case 'TOO_DEEP':
      return at(
        pos,
        `maps and lists are nested more than ${MAX_DEPTH} deep here`,
        'a tend.yaml needs 6 levels at most: check the indentation',
      );
    case 'DUPLICATE_KEY': {
      const key = /^["']?([^:"'\n]*)/.exec(text.slice(pos, pos + 300))?.[1]?.trim() ?? '';
      return at(pos, `the key \`${key}\` appears twice in the same map`, 'keep one of them (YAML keys must be unique)');
    }
    case 'MISSING_CHAR':
      if (/quote/i.test(raw)) {
        const q = raw.includes("'") ? "'" : '"';
        const open = text.lastIndexOf(q, Math.max(0, pos - 1));
        return at(open >= 0 ? open : pos, `this ${q === '"' ? 'double' : 'single'}-quoted string is never closed`, `add the closing ${q}`);
      }
      break;
    case 'BAD_INDENT':
      if (/^Flow (sequence|map)/.test(raw)) {
        const seq = raw.startsWith('Flow sequence');
        const ch = seq ? '[' : '{';
        const open = text.lastIndexOf(ch, Math.max(0, pos - 1));
        return at(
          open >= 0 ? open : pos,
          `this ${seq ? 'list' : 'map'} opened with "${ch}" is never closed`,
          `add the closing "${seq ? ']' : '}'}" on the same line`,
        );
      }
      return at(
        pos + (/^ */.exec(text.slice(pos, pos + 300))?.[0].length ?? 0),
        'this line is indented differently from the keys around it',
        'keys of one map must start at the same column',
      );
    default:
      break;
  }
  if (/call stack/i.test(raw)) return at(pos, `maps and lists are nested too deeply here (tend reads up to ${MAX_DEPTH} levels)`);
  return at(pos, `YAML syntax error: ${raw.replace(/\.$/, '').replace(/^./, (c) => c.toLowerCase())}`);
}

/** `toJS` failed on an alias or a merge key: the diagnostic at the one that fails. */
export function aliasProblem(file: string, doc: Document, loc: YamlLocator, err: Error): Diagnostic {
  let at: Node | undefined;
  let message = `YAML: ${err.message}`;
  let hint: string | undefined;
  visit(doc, {
    Alias(_k, alias) {
      if (/Unresolved alias/i.test(err.message) && alias.resolve(doc) === undefined) {
        at = alias;
        message = `the alias *${alias.source} names no anchor defined before it`;
        hint = `define it first with &${alias.source} on the value to repeat`;
        return visit.BREAK;
      }
      if (/alias count/i.test(err.message)) {
        at = alias;
        message = 'the aliases of this file expand to too much data (an alias bomb?)';
        hint = 'repeat values with fewer nested aliases';
        return visit.BREAK;
      }
      return undefined;
    },
    Pair(_k, pair) {
      if (at || !isScalar(pair.key) || String(pair.key.value).replace(/^Symbol\((.*)\)$/, '$1') !== '<<' || !/merge/i.test(err.message))
        return undefined;
      at = (pair.value as Node | null) ?? (pair.key as Node);
      message = 'a merge key (<<) takes a map or an alias of one';
      hint = 'write <<: *base, where &base is set on a map';
      return visit.BREAK;
    },
  });
  const where = at?.range ? loc.offset(at.range[0]) : { file, line: 1, column: 1 };
  return { ...where, message, ...(hint ? { hint } : {}), severity: 'error' };
}

/** Finds where a path of keys/indices sits in the document. */
export class YamlLocator {
  private parsed: { doc: Document; lc: LineCounter } | undefined;

  /**
   * @param source the parsed document, or how to parse it
   * @param deferred answer locations that are resolved (the document parsed) when first read
   */
  constructor(
    private readonly file: string,
    private readonly source: () => { doc: Document; lc: LineCounter },
    private readonly deferred = false,
  ) {}

  /** A locator of a file read without positions: the document is parsed when a location is first read. */
  static lazy(file: string, text: string): YamlLocator {
    return new YamlLocator(
      file,
      () => {
        const { doc, lineCounter } = parseWithPositions(text);
        return { doc, lc: lineCounter };
      },
      true,
    );
  }

  private get doc(): Document {
    return (this.parsed ??= this.source()).doc;
  }

  private get lc(): LineCounter {
    return (this.parsed ??= this.source()).lc;
  }

  /** `find()`'s answer now, or (deferred) an object whose line and column are found when read. */
  private answer(find: () => SourceLocation): SourceLocation {
    if (!this.deferred) return find();
    let found: SourceLocation | undefined;
    const get = (): SourceLocation => (found ??= find());
    return {
      file: this.file,
      get line() {
        return get().line;
      },
      get column() {
        return get().column;
      },
    };
  }

  /** Each map's entries by key, built on first use: a lookup is then one step per path segment. */
  private readonly index = new WeakMap<YAMLMap, Map<string, Pair>>();

  private entry(map: YAMLMap, seg: string | number): Pair | undefined {
    let m = this.index.get(map);
    if (!m) {
      m = new Map();
      for (const p of map.items) if (isPair(p) && isScalar(p.key) && !m.has(String(p.key.value))) m.set(String(p.key.value), p as Pair);
      this.index.set(map, m);
    }
    return m.get(String(seg));
  }

  private walk(path: YamlPath): { node: Node | null; pair: Pair | null; lastNode: Node | null; lastPair: Pair | null } {
    let node: unknown = this.doc.contents;
    let pair: Pair | null = null;
    let lastNode: Node | null = (node as Node | null) ?? null;
    let lastPair: Pair | null = null;
    for (const seg of path) {
      pair = null;
      if (isMap(node)) {
        const found = this.entry(node, seg);
        if (!found) return { node: null, pair: null, lastNode, lastPair };
        pair = found as Pair;
        node = found.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        if (node === undefined) return { node: null, pair: null, lastNode, lastPair };
      } else {
        return { node: null, pair: null, lastNode, lastPair };
      }
      lastPair = pair ?? lastPair;
      if (node && (node as Node).range) lastNode = node as Node;
    }
    return { node: (node as Node | null) ?? null, pair, lastNode, lastPair };
  }

  offset(offset: number): SourceLocation {
    return this.answer(() => this.pos(offset));
  }

  private pos(offset: number): SourceLocation {
    const { line, col } = this.lc.linePos(offset);
    return { file: this.file, line, column: col };
  }

  /** Where the value at `path` starts (falls back to its key, then to the nearest ancestor). */
  value(path: YamlPath): SourceLocation {
    const p = [...path];
    return this.answer(() => this.valueNow(p));
  }

  private valueNow(path: YamlPath): SourceLocation {
    const w = this.walk(path);
    const v = w.node;
    if (v && v.range && !(isScalar(v) && v.value === null && w.pair)) return this.pos(v.range[0]);
    if (w.pair && isScalar(w.pair.key) && w.pair.key.range) return this.pos(w.pair.key.range[0]);
    return this.ancestor(w);
  }

  /** Where the key of the map entry at `path` starts (for unknown keys and missing fields). */
  key(path: YamlPath): SourceLocation {
    const p = [...path];
    return this.answer(() => this.keyNow(p));
  }

  private keyNow(path: YamlPath): SourceLocation {
    const w = this.walk(path);
    if (w.pair && isScalar(w.pair.key) && w.pair.key.range) return this.pos(w.pair.key.range[0]);
    if (w.node?.range) return this.pos(w.node.range[0]);
    return this.ancestor(w);
  }

  private ancestor(w: { lastNode: Node | null; lastPair: Pair | null }): SourceLocation {
    if (w.lastPair && isScalar(w.lastPair.key) && w.lastPair.key.range) return this.pos(w.lastPair.key.range[0]);
    if (w.lastNode?.range) return this.pos(w.lastNode.range[0]);
    return { file: this.file, line: 1, column: 1 };
  }
}
