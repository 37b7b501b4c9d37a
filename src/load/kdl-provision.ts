/**
 * The post-ready blocks of a VMFile.kdl vm: `provision "shell"|"file" { ... }` steps, the
 * `healthcheck { ... }` and the readiness `timeouts { ... }`, the latter two as field tables.
 */
import { didYouMean } from '../../schemas/names.js';
import { Draft, type Located } from './fields.js';
import type { KNode } from './kdl-parse.js';
import { quote } from './kdl-read.js';
import { duration, existingPath, int, readBlock, type KdlField, type VmCtx } from './kdl-fields.js';

function provision(n: KNode, c: VmCtx): undefined {
  const steps = c.draft.get('/provision');
  const pointer = `/provision/${Array.isArray(steps) ? steps.length : 0}`;
  c.r.noProps(n);
  const kindV = n.args[0];
  if (!kindV) {
    c.r.error(n.loc, 'provision needs a kind: "shell" or "file"', 'write provision "shell" { inline "echo hello" }');
    return undefined;
  }
  if (n.args.length > 1)
    c.r.error(n.args[1].loc, `provision takes one kind, not ${n.args.length} values`, 'write provision "shell" { ... }');
  if (kindV.value !== 'shell' && kindV.value !== 'file') {
    const guess = typeof kindV.value === 'string' ? didYouMean(kindV.value, ['shell', 'file']) : undefined;
    c.r.error(
      kindV.loc,
      `unknown provisioner kind ${quote(kindV.value)}: tend has "shell" and "file"`,
      guess ? `did you mean provision "${guess}"?` : undefined,
    );
    return undefined;
  }
  const kids = c.r.block(n);
  if (!kids) return undefined;
  const step = kindV.value === 'shell' ? shell(c, kindV, kids, pointer) : upload(c, kindV, kids, pointer);
  if (step) c.draft.push('/provision', step, kindV.loc);
  return undefined;
}

function shell(c: VmCtx, kindV: Located<unknown>, kids: KNode[], pointer: string): object | undefined {
  const cs = c.r.children('provision "shell"', kids, ['inline', 'script'], ['inline']);
  const inlineNodes = cs.filter((k) => k.name === 'inline');
  const script = cs.find((k) => k.name === 'script');
  if (inlineNodes.length > 0 && script) {
    c.r.error(script.loc, 'a shell provisioner has inline or script, not both', 'split it into two provision "shell" blocks');
    return undefined;
  }
  if (inlineNodes.length === 0 && !script) {
    if (cs.length === kids.length)
      c.r.error(kindV.loc, 'this shell provisioner has neither inline nor script', 'add inline "echo hello" or script "scripts/setup.sh"');
    return undefined;
  }
  if (script) {
    const v = c.r.string(script);
    const abs = v && existingPath(c, v, 'the script');
    if (!v || !abs) return undefined;
    c.draft.at(`${pointer}/script`, v.loc);
    return { kind: 'shell', script: abs };
  }
  const inline: string[] = [];
  for (const k of inlineNodes) {
    for (const v of c.r.strings(k)) {
      c.draft.at(`${pointer}/inline/${inline.length}`, v.loc);
      inline.push(v.value);
    }
  }
  return inline.length === 0 ? undefined : { kind: 'shell', inline };
}

function upload(c: VmCtx, kindV: Located<unknown>, kids: KNode[], pointer: string): object | undefined {
  const cs = c.r.children('provision "file"', kids, ['source', 'destination']);
  const src = cs.find((k) => k.name === 'source');
  const dst = cs.find((k) => k.name === 'destination');
  if (!src || !dst) {
    c.r.error(
      kindV.loc,
      `this file provisioner has no ${!src ? 'source' : 'destination'}`,
      !src ? 'add source "config/app.conf"' : 'add destination "/etc/app/app.conf"',
    );
    return undefined;
  }
  const s = c.r.string(src);
  const d = c.r.string(dst);
  const abs = s && existingPath(c, s, 'the source file', 'any');
  if (d && !d.value.startsWith('/')) {
    c.r.error(
      d.loc,
      `destination "${d.value}" is not an absolute path in the guest`,
      `write destination "/${d.value.replace(/^\.?\/*/, '')}"`,
    );
    return undefined;
  }
  if (!s || !d || !abs) return undefined;
  c.draft.at(`${pointer}/source`, s.loc);
  c.draft.at(`${pointer}/destination`, d.loc);
  return { kind: 'file', source: abs, destination: d.value };
}

function test(n: KNode, c: VmCtx): Located<string[]> | undefined {
  const vs = c.r.strings(n);
  if (vs.length === 0) return undefined;
  return { value: vs.length === 1 ? ['sh', '-c', vs[0].value] : vs.map((v) => v.value), loc: vs[0].loc };
}

const HEALTHCHECK_FIELDS: readonly KdlField[] = [
  { key: 'test', pointer: '/healthcheck/test', read: test },
  { key: 'interval', pointer: '/healthcheck/interval', unit: 's', read: duration },
  { key: 'retries', pointer: '/healthcheck/retries', read: int() },
  { key: 'start-period', pointer: '/healthcheck/startPeriod', unit: 's', read: duration },
  { key: 'timeout', pointer: '/healthcheck/timeout', unit: 's', read: duration },
];

/** Set only when it has a test; built aside until then. */
function healthcheck(n: KNode, c: VmCtx): undefined {
  const kids = c.r.block(n);
  if (!kids) return undefined;
  c.r.noProps(n);
  const hc = new Draft();
  hc.set('/healthcheck', {});
  readBlock(c, 'healthcheck', kids, HEALTHCHECK_FIELDS, hc);
  if (hc.get('/healthcheck/test') === undefined) {
    if (!kids.some((k) => k.name === 'test')) c.r.error(n.loc, 'healthcheck has no test', 'add test "curl -f http://localhost"');
    return undefined;
  }
  c.draft.adopt('/healthcheck', hc, n.loc);
  return undefined;
}

const TIMEOUTS_FIELDS: readonly KdlField[] = (['start', 'ssh', 'login', 'cloud-init'] as const).map((key) => ({
  key,
  pointer: `/timeouts/${key === 'cloud-init' ? 'cloudInit' : key}`,
  unit: 's',
  read: duration,
}));

/** `timeouts { start "1m"; ssh "10m"; login "5m"; cloud-init "20m" }`: readiness stage limits. */
function timeouts(n: KNode, c: VmCtx): undefined {
  const kids = c.r.block(n);
  if (!kids) return undefined;
  c.r.noProps(n);
  if (c.draft.get('/timeouts') === undefined) c.draft.set('/timeouts', {});
  readBlock(c, 'timeouts', kids, TIMEOUTS_FIELDS);
  return undefined;
}

export const PROVISION_FIELD: KdlField = { key: 'provision', pointer: '', repeatable: true, read: provision };
export const HEALTHCHECK_FIELD: KdlField = { key: 'healthcheck', pointer: '', read: healthcheck };
export const TIMEOUTS_FIELD: KdlField = { key: 'timeouts', pointer: '', read: timeouts };
