/**
 * Structural validation of a tend.yaml against schemas/tend.schema.json (the same schema
 * editors use), with ajv's errors turned into plain-word diagnostics at the YAML node's
 * position. Pattern errors are left to the semantic checks in compose-service.ts, which can
 * say what exactly is wrong with a port, a duration or a name.
 */
import type { ErrorObject } from 'ajv';
import { validateTendFile, type GeneratedValidator } from '../../schemas/validators.generated.js';
import { didYouMean } from '../../schemas/names.js';
import { memoryWithUnitToMiB } from '../../schemas/units.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import type { YamlPath } from './compose-yaml.js';
import type { PathLocator } from './compose-merge.js';

// Precompiled by scripts/gen-validators.ts: compiling the schema at start-up costs ~200 ms.
function validate(): GeneratedValidator {
  return validateTendFile;
}

/** Where a path is, in words: "service web", "vm of service web", "the top level". */
export function context(path: YamlPath): string {
  if (path.length === 0) return 'the top level';
  if (path[0] === 'services' && path.length >= 2) {
    const svc = `service ${String(path[1])}`;
    const inner = path.slice(2).filter((s) => typeof s === 'string');
    return inner.length ? `${inner.join('.')} of ${svc}` : svc;
  }
  if (path[0] === 'volumes' && path.length >= 2) return `volume ${String(path[1])}`;
  return path.filter((s) => typeof s === 'string').join('.');
}

/** How a field is named in messages: its key, or "item 2 of ports". */
export function fieldName(path: YamlPath): string {
  const last = path[path.length - 1];
  if (typeof last === 'number') {
    const parent = path[path.length - 2];
    return `item ${last + 1} of ${String(parent)}`;
  }
  return String(last ?? 'the file');
}

/** Keys people write that tend spells differently: what to write instead. */
const KEY_ADVICE: Record<string, Record<string, string>> = {
  service: {
    memory: 'memory goes under vm, in MiB: `vm: { memory_mb: 2048 }`',
    memory_mb: 'memory goes under vm: `vm: { memory_mb: 2048 }`',
    mem_limit: 'memory goes under vm, in MiB: `vm: { memory_mb: 2048 }`',
    ram: 'memory goes under vm, in MiB: `vm: { memory_mb: 2048 }`',
    cpus: 'CPUs go under vm: `vm: { vcpu: 2 }`',
    vcpu: 'CPUs go under vm: `vm: { vcpu: 2 }`',
    vcpus: 'CPUs go under vm: `vm: { vcpu: 2 }`',
    disk: 'the disk size goes under vm: `vm: { disk_size: 20G }`',
    disk_size: 'the disk size goes under vm: `vm: { disk_size: 20G }`',
    uefi: 'write `firmware: uefi` (or `vm: { uefi: true }`)',
    machine: 'the machine type goes under vm: `vm: { machine: q35 }`',
    extra_args: 'extra QEMU arguments go under vm: `vm: { extra_args: [...] }`',
    user_data: 'user_data goes under cloud_init: `cloud_init: { user_data: ./user-data }`',
    hostname: 'the host name goes under cloud_init: `cloud_init: { hostname: web }`',
    command: 'tend runs VMs, not containers: use provision steps or cloud_init.runcmd',
    entrypoint: 'tend runs VMs, not containers: use provision steps or cloud_init.runcmd',
    environment: 'tend runs VMs, not containers: write an environment file with cloud_init.write_files',
    build: 'tend runs VMs, not containers: start from an image and use provision steps',
    scale: 'write `replicas: N`',
  },
  vm: {
    memory: 'memory is in MiB: write `memory_mb: 2048`',
    memroy: 'memory is in MiB: write `memory_mb: 2048`',
    mem: 'memory is in MiB: write `memory_mb: 2048`',
    ram: 'memory is in MiB: write `memory_mb: 2048`',
    cpus: 'write `vcpu: 2`',
    cpu: 'write `vcpu: 2`',
    vcpus: 'write `vcpu: 2`',
    disk: 'write `disk_size: 20G`',
    firmware: 'firmware is a service key: `firmware: uefi`',
  },
};

function keyAdvice(parent: YamlPath, key: string): string | undefined {
  if (parent[0] !== 'services') return undefined;
  if (parent.length === 2) return KEY_ADVICE.service[key];
  if (parent.length === 3 && parent[2] === 'vm') return KEY_ADVICE.vm[key];
  return undefined;
}

function toPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => {
      const k = s.replace(/~1/g, '/').replace(/~0/g, '~');
      return /^\d+$/.test(k) ? Number(k) : k;
    });
}

function describeType(t: unknown): string {
  const one = (x: string): string =>
    ({
      integer: 'a whole number',
      number: 'a number',
      string: 'a string',
      array: 'a list',
      object: 'a map of keys',
      boolean: 'true or false',
      null: 'empty',
    })[x] ?? x;
  return Array.isArray(t) ? t.map((x) => one(String(x))).join(' or ') : one(String(t));
}

/** What a schema (branch) accepts, in words, for "must be X or Y". */
function describeSchema(s: unknown): string {
  const sch = s as { type?: unknown; enum?: unknown[]; const?: unknown; $ref?: string; anyOf?: unknown[] };
  if (sch.enum) return `one of ${sch.enum.join(', ')}`;
  if (sch.const !== undefined) return String(sch.const);
  if (sch.anyOf) return sch.anyOf.map(describeSchema).join(', or ');
  if (sch.type) return describeType(sch.type);
  if (sch.$ref) return 'a map of keys';
  return 'something else';
}

function show(v: unknown): string {
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v);
}

export interface SchemaCheck {
  diagnostics: Diagnostic[];
  /** JSON pointers (into the YAML document) that already have an error */
  flagged: Set<string>;
}

export function checkSchema(data: unknown, loc: PathLocator): SchemaCheck {
  const v = validate();
  const flagged = new Set<string>();
  if (v(data)) return { diagnostics: [], flagged };
  let errors = (v.errors ?? []).filter((e) => e.keyword !== 'if');

  // Inside anyOf/oneOf, ajv reports every branch's complaint. Keep what the user meant: errors
  // deeper than the composite, else specific complaints (unknown/missing keys) at its level,
  // else one "must be X or Y" from the composite itself.
  const compositePaths = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath);
  const under = (p: string, cp: string): boolean => p === cp || p.startsWith(cp + '/');
  const specific = (e: ErrorObject): boolean => e.keyword === 'additionalProperties' || e.keyword === 'required';
  errors = errors.filter((e) => {
    const cps = compositePaths.filter((cp) => under(e.instancePath, cp));
    if (cps.length === 0) return true;
    const cp = cps.reduce((a, b) => (b.length > a.length ? b : a));
    if (e.instancePath !== cp) return true;
    const siblings = errors.filter((o) => under(o.instancePath, cp));
    if (siblings.some((o) => o.instancePath !== cp)) return specific(e);
    if (siblings.some(specific)) return specific(e);
    return e.keyword === 'anyOf' || e.keyword === 'oneOf';
  });
  // Pattern errors are left to the semantic checks (they say what exactly is wrong).
  errors = errors.filter((e) => e.keyword !== 'pattern' && e.keyword !== 'propertyNames');
  // "unknown key `mod`; did you mean `mode`?" already covers "has no `mode`".
  errors = errors.filter((e) => {
    if (e.keyword !== 'required') return true;
    const missing = (e.params as { missingProperty: string }).missingProperty;
    return !errors.some(
      (o) =>
        o.keyword === 'additionalProperties' &&
        o.instancePath === e.instancePath &&
        didYouMean((o.params as { additionalProperty: string }).additionalProperty, [missing]) === missing,
    );
  });
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const d = toDiagnostic(e, loc);
    if (!d) continue;
    const key = `${d.line}:${d.column}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    flagged.add(
      e.keyword === 'additionalProperties'
        ? `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`
        : e.keyword === 'required'
          ? `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`
          : e.instancePath,
    );
    out.push(d);
  }
  return { diagnostics: out, flagged };
}

function toDiagnostic(e: ErrorObject, loc: PathLocator): Diagnostic | null {
  const path = toPath(e.instancePath);
  const mk = (where: { file: string; line: number; column: number }, message: string, hint?: string): Diagnostic => ({
    ...where,
    message,
    ...(hint ? { hint } : {}),
    severity: 'error',
  });
  const name = fieldName(path);
  const ctx = context(path.slice(0, -1));
  const inCtx = path.length > 1 ? ` in ${ctx}` : '';
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const keyPath = [...path, key];
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const advice = keyAdvice(path, key);
      const guess = advice ? undefined : didYouMean(key, known);
      const where = path.length === 0 ? 'at the top level' : `in ${context(path)}`;
      return mk(
        loc.key(keyPath),
        `unknown key \`${key}\` ${where}${guess ? `; did you mean \`${guess}\`?` : ''}`,
        advice ?? (guess ? undefined : known.length ? `known keys: ${known.join(', ')}` : undefined),
      );
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const hint =
        missing === 'image'
          ? 'add `image: debian:12` (a catalog name), an https URL, or a path to a local image'
          : missing === 'services'
            ? 'add `services:` with at least one service, e.g. `services: { web: { image: debian:12 } }`'
            : undefined;
      const where = path.length === 0 ? 'the file' : context(path);
      return mk(loc.key(path), `${where} has no \`${missing}\``, hint);
    }
    case 'type': {
      const want = describeType((e.params as { type: unknown }).type);
      if (path.length === 2 && path[0] === 'services' && e.data === null) {
        return mk(loc.key(path), `service ${String(path[1])} is empty`, 'give it at least an image: `image: debian:12`');
      }
      if (name === 'memory_mb' && typeof e.data === 'string' && !/^\d+$/.test(e.data)) {
        const mib = memoryWithUnitToMiB(e.data);
        return mk(
          loc.value(path),
          `memory_mb is in MiB: write memory_mb: ${mib ?? 2048}${mib === null ? ' (2 GiB)' : ''} instead of ${show(e.data)} (${ctx})`,
          'memory_mb takes a whole number of MiB (1024 = 1 GiB)',
        );
      }
      if (typeof e.data === 'number' && !Number.isInteger(e.data) && want.startsWith('a whole number')) {
        return mk(loc.value(path), `${name}${inCtx} must be a whole number, not ${e.data}`);
      }
      if (
        typeof e.data === 'string' &&
        /integer|number/.test(String((e.params as { type: unknown }).type)) &&
        /^\d+(\.\d+)?$/.test(e.data)
      ) {
        return mk(
          loc.value(path),
          `${name}${inCtx} must be a number, not the string ${show(e.data)}`,
          `remove the quotes: ${name}: ${e.data}`,
        );
      }
      return mk(loc.value(path), `${name}${inCtx} must be ${want}, not ${e.data === null ? 'empty' : show(e.data)}`);
    }
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum': {
      const limit = (e.params as { limit: number }).limit;
      const parent = e.parentSchema as { minimum?: number; maximum?: number };
      const unit = name === 'memory_mb' ? ' MiB' : name === 'disk_size' || name === 'size' ? ' GiB' : '';
      if (parent.minimum !== undefined && parent.maximum !== undefined && unit === '') {
        return mk(loc.value(path), `${name}${inCtx} must be between ${parent.minimum} and ${parent.maximum}, not ${show(e.data)}`);
      }
      const rel = e.keyword === 'maximum' ? 'at most' : e.keyword === 'exclusiveMinimum' ? 'more than' : 'at least';
      return mk(loc.value(path), `${name}${inCtx} must be ${rel} ${limit}${unit}, not ${show(e.data)}`);
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined;
      const hint =
        name === 'restart' && e.data === 'unless-stopped'
          ? 'write restart: always (tend never undoes a `tend stop`, which is what unless-stopped means in compose)'
          : guess
            ? `did you mean ${guess}?`
            : undefined;
      return mk(loc.value(path), `${name}${inCtx} must be one of ${allowed.join(', ')}, not ${show(e.data)}`, hint);
    }
    case 'anyOf':
    case 'oneOf': {
      const branches = (e.parentSchema as { anyOf?: unknown[]; oneOf?: unknown[] })[e.keyword === 'anyOf' ? 'anyOf' : 'oneOf'] ?? [];
      return mk(
        loc.value(path),
        `${name}${inCtx} must be ${branches.map(describeSchema).join(', or ')}, not ${e.data === null ? 'empty' : show(e.data)}`,
      );
    }
    case 'minItems':
    case 'minLength':
      return mk(loc.value(path), `${name}${inCtx} must not be empty`);
    case 'minProperties':
      if (path.length === 1 && path[0] === 'services') {
        return mk(loc.key(path), 'services is empty: the file declares no VMs', 'add a service, e.g. `web: { image: debian:12 }`');
      }
      return mk(loc.value(path), `${name}${inCtx} must not be empty`);
    default:
      return mk(loc.value(path), `${name}${inCtx} ${e.message ?? 'is invalid'}`);
  }
}
