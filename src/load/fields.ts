/**
 * The field-table mechanism every dialect reader shares. A dialect describes each of its keys by
 * one row: the key as the dialect spells it, the JSON pointer of the canonical VmSpec field it
 * fills, a reader that turns the written value into the canonical one (reporting what is wrong at
 * the value's position), the unit named in messages and an example for hints. The mechanism puts
 * the value into the draft, records where it was written (for errors found later), and checks
 * numbers against the limits of the canonical schema (schemas/model.ts), so every range is written
 * once. VMFile.kdl (kdl-vm.ts) and tend.yaml (compose-service.ts) are such tables; vms.yml will be
 * one more.
 */
import type { SourceLocation } from '../../schemas/model.js';
import { vmSpecSchema } from '../../schemas/model.js';

export interface Located<T> {
  value: T;
  loc: SourceLocation;
}

/** One row of a dialect's field table. `Src` is what the dialect reads from, `Ctx` its reader state. */
export interface Field<Src, Ctx> {
  /** the key as the dialect spells it (`vcpus`, `vm.vcpu`) */
  key: string;
  /** JSON pointer of the canonical VmSpec field the value fills; '' when `read` places values itself */
  pointer: string;
  /** unit named in messages ("MiB") */
  unit?: string;
  /** a correct example, for hints (`memory 2048`) */
  example?: string;
  /** the key may be given more than once */
  repeatable?: boolean;
  /** the value, or undefined after reporting why there is none (or after placing values itself) */
  read(src: Src, ctx: Ctx, field: Field<Src, Ctx>): Located<unknown> | undefined;
  /** what to say when a number is below the canonical minimum, when the generic words are not enough */
  tooSmall?: (n: number) => { message: string; hint?: string };
  /** the canonical pattern in words, for a string that does not match it ("a user name") */
  form?: { what: string; hint: string };
}

/** A VM draft under construction, with the location of every field (see LoadedVm.fieldLocs). */
export class Draft {
  readonly value: Record<string, unknown> = {};
  readonly locs: Record<string, SourceLocation> = {};

  at(pointer: string, loc: SourceLocation): void {
    this.locs[pointer] = loc;
  }

  get(pointer: string): unknown {
    let o: unknown = this.value;
    for (const seg of segments(pointer)) {
      if (typeof o !== 'object' || o === null) return undefined;
      o = (o as Record<string, unknown>)[seg];
    }
    return o;
  }

  /** Sets the value at `pointer` (creating the objects above it) and records where it was written. */
  set(pointer: string, value: unknown, loc?: SourceLocation): void {
    const segs = segments(pointer);
    let o = this.value;
    for (const seg of segs.slice(0, -1)) {
      const next = o[seg];
      if (typeof next !== 'object' || next === null) o[seg] = {};
      o = o[seg] as Record<string, unknown>;
    }
    o[segs[segs.length - 1]] = value;
    if (loc) this.locs[pointer] = loc;
  }

  /** Appends to the list at `pointer`; the item's location is recorded at `pointer/index`. */
  push(pointer: string, value: unknown, loc: SourceLocation): void {
    let list = this.get(pointer);
    if (!Array.isArray(list)) {
      list = [];
      this.set(pointer, list);
    }
    const items = list as unknown[];
    this.locs[`${pointer}/${items.length}`] = loc;
    items.push(value);
  }

  /** Takes over what a sub-draft holds at `pointer` (built aside until it proved complete). */
  adopt(pointer: string, sub: Draft, loc?: SourceLocation): void {
    this.set(pointer, sub.get(pointer), loc);
    for (const [p, l] of Object.entries(sub.locs)) if (p.startsWith(pointer + '/')) this.locs[p] = l;
  }
}

function segments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Limits of a canonical field, as the schema states them: numeric bounds, a string pattern. */
export interface Limits {
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  pattern?: string;
}

type SchemaNode = {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  pattern?: string;
};

const limitsCache = new Map<string, Limits>();

/** The limits the canonical schema puts on the field at `pointer` (indices and oneOf branches are walked). */
export function limitsAt(pointer: string, root: SchemaNode = vmSpecSchema as unknown as SchemaNode): Limits {
  const cached = root === (vmSpecSchema as unknown) ? limitsCache.get(pointer) : undefined;
  if (cached) return cached;
  let nodes: SchemaNode[] = [root];
  for (const seg of segments(pointer)) {
    const next: SchemaNode[] = [];
    for (const n of nodes.flatMap((x) => [x, ...(x.oneOf ?? [])])) {
      if (/^\d+$/.test(seg) && n.items) next.push(n.items);
      else if (n.properties?.[seg]) next.push(n.properties[seg]);
    }
    nodes = next;
  }
  const n = nodes
    .flatMap((x) => [x, ...(x.oneOf ?? [])])
    .find((x) => x.minimum !== undefined || x.maximum !== undefined || x.exclusiveMinimum !== undefined);
  const out: Limits = {};
  if (n?.minimum !== undefined) out.minimum = n.minimum;
  if (n?.exclusiveMinimum !== undefined) out.exclusiveMinimum = n.exclusiveMinimum;
  if (n?.maximum !== undefined) out.maximum = n.maximum;
  const pattern = nodes.flatMap((x) => [x, ...(x.oneOf ?? [])]).find((x) => x.pattern !== undefined)?.pattern;
  if (pattern !== undefined) out.pattern = pattern;
  if (root === (vmSpecSchema as unknown)) limitsCache.set(pointer, out);
  return out;
}

const patterns = new Map<string, RegExp>();

/** Whether `s` has the form the canonical schema asks for (no pattern: any string). */
export function matchesForm(s: string, l: Limits): boolean {
  if (l.pattern === undefined) return true;
  let re = patterns.get(l.pattern);
  if (!re) patterns.set(l.pattern, (re = new RegExp(l.pattern, 'u')));
  return re.test(s);
}

/** Which limit `n` breaks, or undefined. */
export function outOfRange(n: number, l: Limits): { rel: 'min' | 'exclusiveMin' | 'max'; limit: number } | undefined {
  if (l.minimum !== undefined && n < l.minimum) return { rel: 'min', limit: l.minimum };
  if (l.exclusiveMinimum !== undefined && n <= l.exclusiveMinimum) return { rel: 'exclusiveMin', limit: l.exclusiveMinimum };
  if (l.maximum !== undefined && n > l.maximum) return { rel: 'max', limit: l.maximum };
  return undefined;
}

/** A limit in words: "604800s" is "7 days", "16777216 MiB" stays as it is. */
export function limitText(limit: number, unit: string | undefined): string {
  if (unit === 's') return limit >= 86400 && limit % 86400 === 0 ? `${limit / 86400} days` : `${limit}s`;
  return unit ? `${limit} ${unit}` : String(limit);
}

/** "must be at least 64 MiB" and friends: the words for a broken limit. */
export function rangeWords(broken: { rel: 'min' | 'exclusiveMin' | 'max'; limit: number }, unit: string | undefined): string {
  if (broken.rel === 'max') return `must be at most ${limitText(broken.limit, unit)}`;
  if (broken.rel === 'exclusiveMin') return `must be more than ${limitText(broken.limit, unit)}`;
  return `must be at least ${limitText(broken.limit, unit)}`;
}

/**
 * Reads `src` with `field` and places a value the canonical limits accept. `range` reports a
 * number outside them, `form` a string that does not match the canonical pattern (each in the
 * dialect's words); returns whether a value was placed.
 */
export function applyField<Src, Ctx>(
  draft: Draft,
  field: Field<Src, Ctx>,
  src: Src,
  ctx: Ctx,
  range: (v: Located<number>, broken: { rel: 'min' | 'exclusiveMin' | 'max'; limit: number }, field: Field<Src, Ctx>) => void,
  form: (v: Located<string>, field: Field<Src, Ctx>) => void,
): boolean {
  const v = field.read(src, ctx, field);
  if (v === undefined || field.pointer === '') return false;
  const pointer = field.pointer;
  if (typeof v.value === 'number') {
    const broken = outOfRange(v.value, limitsAt(pointer));
    if (broken) {
      range(v as Located<number>, broken, field);
      return false;
    }
  } else if (typeof v.value === 'string' && !matchesForm(v.value, limitsAt(pointer))) {
    form(v as Located<string>, field);
    return false;
  }
  draft.set(pointer, v.value, v.loc);
  return true;
}

/** The canonical patterns (schemas/names.ts) in words, for rows whose field has one. */
export const FORMS = {
  sshUser: {
    what: 'a valid user name',
    hint: 'a user name has letters, digits, "_", "." and "-" (at most 32, not starting with "-"), e.g. debian',
  },
  linuxUser: {
    what: 'a valid Linux user name',
    hint: 'use lower-case letters, digits, "_" and "-", starting with a letter or "_" (at most 32)',
  },
  machine: { what: 'a QEMU machine type', hint: 'write e.g. q35, pc or virt (see qemu-system-x86_64 -machine help)' },
  cpuModel: { what: 'a QEMU CPU model', hint: 'write e.g. host, max or Haswell (see qemu-system-x86_64 -cpu help)' },
  bridge: { what: 'a network interface name', hint: 'a bridge name has at most 15 letters, digits, "_", "." and "-", e.g. br0' },
  os: { what: 'an OS family name', hint: 'write e.g. debian, ubuntu, alpine, fedora, systemd or openrc' },
} as const;
