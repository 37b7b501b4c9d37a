/**
 * Compose interpolation applied to a parsed tend.yaml (before the file is merged with others, as
 * compose does it): every string value (not keys) is interpolated in place, so every later
 * position still points into the file as written; problems are placed at the `$` of their
 * expression. A plain (unquoted) value is then read as if its result had been written there:
 * `vcpu: ${CPUS}` with CPUS=2 is the number 2; quote it to keep a string. Also collects compose's
 * merge tags `!reset` / `!override` by path, for compose-merge.ts.
 */
import { isMap, isScalar, isSeq, Scalar, visit, type Document, type Node } from 'yaml';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { interpolate, type Lookup } from './interpolate.js';
import type { YamlLocator, YamlPath } from './compose-yaml.js';

export function interpolateDocument(doc: Document, text: string, loc: YamlLocator, lookup: Lookup): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (!text.includes('$')) return out;
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const r = interpolate(node.value, lookup);
      if (!r.changed) return;
      const start = node.range?.[0] ?? 0;
      const source = node.range ? text.slice(node.range[0], node.range[1]) : '';
      for (const p of r.problems) {
        // the expression as written in the file; its n-th occurrence when it appears several times
        const before = node.value.slice(0, p.index).split(p.expr).length - 1;
        let at = -1;
        for (let n = 0; n <= before; n++) {
          at = source.indexOf(p.expr, at + 1);
          if (at < 0) break;
        }
        out.push({
          ...loc.offset(start + Math.max(0, at)),
          message: p.message,
          ...(p.hint ? { hint: p.hint } : {}),
          severity: p.severity,
        });
      }
      if (r.problems.some((p) => p.severity === 'error')) return;
      node.value = node.type === Scalar.PLAIN ? plainValue(r.value) : r.value;
    },
  });
  return out;
}

/** YAML 1.2 core schema reading of a plain scalar's text (ints, floats, booleans, null). */
function plainValue(s: string): unknown {
  if (/^[-+]?[0-9]+$/.test(s) && Number.isSafeInteger(Number(s))) return Number(s);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^(null|Null|NULL|~)$/.test(s)) return null;
  return s;
}

export type MergeTag = 'reset' | 'override';

/** `!reset` / `!override` values by path (joined with "\0"). */
export function mergeTags(doc: Document, text: string): Map<string, MergeTag> {
  const tags = new Map<string, MergeTag>();
  if (!text.includes('!reset') && !text.includes('!override')) return tags;
  const walk = (node: unknown, path: YamlPath): void => {
    const n = node as Node | null;
    if (n && (isMap(n) || isSeq(n) || isScalar(n)) && (n.tag === '!reset' || n.tag === '!override'))
      tags.set(path.join('\0'), n.tag === '!reset' ? 'reset' : 'override');
    if (isMap(n)) {
      for (const p of n.items) if (isScalar(p.key)) walk(p.value, [...path, String(p.key.value)]);
    } else if (isSeq(n)) n.items.forEach((v, i) => walk(v, [...path, i]));
  };
  walk(doc.contents, []);
  return tags;
}
