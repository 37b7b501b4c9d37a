/**
 * The tend.yaml / holos.yaml loader (holos compose dialect): YAML with positions → structural
 * check against schemas/tend.schema.json → per-service semantic checks → VM drafts, one per
 * replica. Never throws on bad input: every problem is a diagnostic at file:line:column.
 * The accepted keys are documented in docs/compose.md.
 */
import { basename, dirname } from 'node:path';
import type { DialectLoader, DialectResult, LoadedVm } from './common.js';
import { nameProblem } from '../../schemas/names.js';
import { aliasProblem, parseYaml } from './compose-yaml.js';
import { checkSchema } from './compose-schema.js';
import { MAX_VMS } from './limits.js';
import { namedVolumes, replicasOf, report, serviceToVms, type ComposeContext } from './compose-service.js';

export const loadCompose: DialectLoader = (file, text, env = process.env) => {
  const result: DialectResult = { vms: [], volumes: {}, volumeLocs: {}, diagnostics: [] };
  const { doc, locator, diagnostics } = parseYaml(file, text);
  if (diagnostics.length) {
    result.diagnostics = diagnostics;
    return result;
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // aliases and merge keys are resolved here: say where the one that fails is
    result.diagnostics = [aliasProblem(file, doc, locator, err as Error)];
    return result;
  }
  if (data === null || data === undefined) {
    result.diagnostics.push({
      file,
      line: 1,
      column: 1,
      message: 'the file is empty',
      hint: 'declare services: `services: { web: { image: debian:12 } }`',
      severity: 'error',
    });
    return result;
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    const where = locator.value([]);
    result.diagnostics.push({
      ...where,
      message: 'the file must be a map of keys (name, services, volumes)',
      hint: 'start with `services:`',
      severity: 'error',
    });
    return result;
  }
  const schema = checkSchema(data, locator);
  const ctx: ComposeContext = {
    file,
    dir: dirname(file),
    env,
    loc: locator,
    diagnostics: [...schema.diagnostics],
    flagged: schema.flagged,
    replicasOf: new Map(),
    holos: /^holos\.ya?ml$/i.test(basename(file)),
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
  result.diagnostics = dedupe(ctx.diagnostics).sort((a, b) => a.line - b.line || a.column - b.column);
  return result;
};

function dedupe<T extends { line: number; column: number; message: string }>(ds: T[]): T[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.line}:${d.column}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
