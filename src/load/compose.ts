/**
 * The tend.yaml / holos.yaml loader (holos compose dialect): YAML with positions → structural
 * check against schemas/tend.schema.json → per-service semantic checks → VM drafts, one per
 * replica. Never throws on bad input: every problem is a diagnostic at file:line:column.
 * The accepted keys are documented in docs/compose.md.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DialectLoader, DialectResult, LoadedVm } from './common.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { nameProblem } from '../../schemas/names.js';
import { aliasProblem, parseYaml, readYamlFast, type YamlLocator } from './compose-yaml.js';
import { checkSchema } from './compose-schema.js';
import { MAX_FILE_BYTES, MAX_VMS } from './limits.js';
import { isHolosFile } from './holos-file.js';
import { namedVolumes, replicasOf, report, serviceToVms, type ComposeContext } from './compose-service.js';
import { interpolateDocument, mergeTags, type MergeTag } from './compose-vars.js';
import { mergeParts, type MergePart } from './compose-merge.js';
import { parseDotEnv } from './dotenv.js';

export const loadCompose: DialectLoader = (file, text, env = process.env) => loadComposeFiles([{ file, text }], env);

/**
 * One compose project from one or more files (`-f a.yaml -f b.yaml`): each file parsed and
 * interpolated on its own (the environment, then the .env file next to the first file), then
 * merged in order with compose's rules (compose-merge.ts). Paths are relative to the first file.
 */
export function loadComposeFiles(files: readonly { file: string; text: string }[], env: NodeJS.ProcessEnv = process.env): DialectResult {
  const result: DialectResult = { vms: [], volumes: {}, volumeLocs: {}, diagnostics: [] };
  const file = files[0].file;
  const holos = isHolosFile(file);
  const pre: Diagnostic[] = [];
  const dotenv = holos || !files.some((f) => f.text.includes('$')) ? undefined : readDotEnv(dirname(file), env);
  if (dotenv) pre.push(...dotenv.diagnostics);
  const lookup = (name: string): string | undefined => env[name] ?? dotenv?.vars.get(name);
  const parts: MergePart[] = [];
  for (const f of files) {
    const read = readPart(f.file, f.text, holos, lookup, pre);
    if (!read) continue;
    const { data, locator } = read;
    if (data === null || data === undefined) {
      pre.push({
        file: f.file,
        line: 1,
        column: 1,
        message: 'the file is empty',
        hint: 'declare services: `services: { web: { image: debian:12 } }`',
        severity: 'error',
      });
      continue;
    }
    if (typeof data !== 'object' || Array.isArray(data)) {
      const where = locator.value([]);
      pre.push({
        ...where,
        message: 'the file must be a map of keys (name, services, volumes)',
        hint: 'start with `services:`',
        severity: 'error',
      });
      continue;
    }
    parts.push({ data: data as Record<string, unknown>, loc: locator, tags: read.tags });
  }
  if (pre.some((d) => d.severity === 'error')) {
    result.diagnostics = pre;
    return result;
  }
  const { data, loc: locator } = mergeParts(parts);
  const schema = checkSchema(data, locator);
  const ctx: ComposeContext = {
    file,
    dir: dirname(file),
    env,
    loc: locator,
    diagnostics: [...pre, ...schema.diagnostics],
    flagged: schema.flagged,
    replicasOf: new Map(),
    holos,
  };
  const top = data as Record<string, unknown>;
  if (typeof top.name === 'string') {
    const problem = nameProblem(top.name);
    if (problem)
      report(
        ctx,
        ['name'],
        `project name ${problem.replace(/^the name /, '')}`,
        'the project name becomes a folder name: use lower-case letters, digits and "-"',
      );
    else result.name = top.name;
  }
  // the project-wide default of `warm` (the JSON Schema reported a value that is not a boolean)
  if (typeof top.warm === 'boolean') result.warm = { value: top.warm, loc: locator.value(['warm']) };
  const services = top.services;
  const vms: LoadedVm[] = [];
  if (typeof services === 'object' && services !== null && !Array.isArray(services)) {
    for (const [svc, raw] of Object.entries(services)) ctx.replicasOf.set(svc, replicasOf(raw));
    const count = [...ctx.replicasOf.values()].reduce((a, b) => a + b, 0);
    if (count > MAX_VMS) {
      report(
        ctx,
        ['services'],
        `the file declares ${count} VMs (services × replicas)`,
        `tend manages up to ${MAX_VMS} VMs per project`,
        'key',
      );
      result.diagnostics = ctx.diagnostics;
      return result;
    }
    for (const [svc, raw] of Object.entries(services)) vms.push(...serviceToVms(ctx, svc, raw));
  }
  const vols = namedVolumes(ctx, top.volumes);
  result.vms = vms;
  result.volumes = vols.volumes;
  result.volumeLocs = vols.locs;
  result.diagnostics = dedupe(ctx.diagnostics).sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  return result;
}

/** The .env file of the project's folder, when there is one (a folder or a special file named .env is not read). */
function readDotEnv(dir: string, env: NodeJS.ProcessEnv): ReturnType<typeof parseDotEnv> | undefined {
  const path = join(dir, '.env');
  try {
    const st = statSync(path);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    return parseDotEnv(path, readFileSync(path, 'utf8'), env);
  } catch {
    return undefined;
  }
}

function dedupe<T extends { file: string; line: number; column: number; message: string }>(ds: T[]): T[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.file}:${d.line}:${d.column}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * One file's data, interpolated, with its locator and merge tags; undefined after adding to `pre`
 * why it cannot be read. A plain file with nothing to interpolate is read fast, its positions
 * found only if a diagnostic needs one (compose-yaml.ts).
 */
function readPart(
  file: string,
  text: string,
  holos: boolean,
  lookup: (name: string) => string | undefined,
  pre: Diagnostic[],
): { data: unknown; locator: YamlLocator; tags: Map<string, MergeTag> } | undefined {
  // the fast reader declines every tag, so `!reset` / `!override` are never lost; a `$` in a
  // comment (the schema modeline) interpolates nothing, a `$` in a value needs the document
  const fast = readYamlFast(file, text);
  if (fast && (holos || !dollarInValue(fast.data))) return { ...fast, tags: new Map() };
  const { doc, locator, diagnostics } = parseYaml(file, text);
  if (diagnostics.length) {
    pre.push(...diagnostics);
    return undefined;
  }
  if (!holos) {
    const found = interpolateDocument(doc, text, locator, lookup);
    pre.push(...found);
    if (found.some((d) => d.severity === 'error')) return undefined;
  }
  try {
    return { data: doc.toJS({ maxAliasCount: 100 }), locator, tags: mergeTags(doc, text) };
  } catch (err) {
    // aliases and merge keys are resolved here: say where the one that fails is
    pre.push(aliasProblem(file, doc, locator, err as Error));
    return undefined;
  }
}

/** Whether a string value (not a key) has a `$`: what interpolateDocument would look at. */
function dollarInValue(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('$');
  if (Array.isArray(v)) return v.some(dollarInValue);
  if (typeof v === 'object' && v !== null) return Object.values(v).some(dollarInValue);
  return false;
}
