/**
 * The VMFile.kdl loader (vmctl dialect). KDL text → VM drafts in canonical units, with the
 * location of every field. Never throws on bad input: every problem of the file is a diagnostic
 * at file:line:column, and a file with any problem yields no VM at all.
 * Accepted nodes: vmctl's VMFile reference plus tend's additions, documented in docs/kdl.md.
 */
import { dirname } from 'node:path';
import type { SourceLocation } from '../../schemas/model.js';
import { type DialectLoader, type DialectResult, type LoadedVm } from './common.js';
import { didYouMean, nameProblem } from '../../schemas/names.js';
import { VOLUME_NAME_RE } from './volumes.js';
import { MAX_SIZE_GIB } from '../../schemas/model.js';
import { MAX_VMS } from './limits.js';
import { parseKdl, type KNode } from './kdl-parse.js';
import { KdlReader, quote } from './kdl-read.js';
import { readVm, type KdlContext } from './kdl-vm.js';

const TOP_NODES = ['vm', 'volume', 'name', 'warm'];

export const loadKdl: DialectLoader = (file, text, env = process.env) => {
  const result: DialectResult = { vms: [], volumes: {}, volumeLocs: {}, diagnostics: [] };
  const parsed = parseKdl(file, text);
  if (!parsed.nodes) {
    result.diagnostics = parsed.diagnostics;
    return result;
  }
  const r = new KdlReader();
  const ctx: KdlContext = { file, dir: dirname(file), env };
  const vms: LoadedVm[] = [];
  const seen = new Map<string, SourceLocation>();
  let vmCount = 0;
  const overLimit = parsed.nodes.filter((n) => n.name === 'vm')[MAX_VMS];
  if (overLimit) {
    r.error(overLimit.loc, `the file declares more than ${MAX_VMS} VMs`, `tend manages up to ${MAX_VMS} VMs per project`);
    result.diagnostics = r.diagnostics;
    return result;
  }

  for (const node of parsed.nodes) {
    if (!TOP_NODES.includes(node.name)) {
      const guess =
        didYouMean(node.name, TOP_NODES) ?? (didYouMean(node.name, ['image', 'image-url', 'memory', 'vcpus', 'disk']) ? 'vm' : undefined);
      r.error(
        node.loc,
        `unknown node "${node.name}" at the top level`,
        guess === 'vm' && node.name !== 'vn' && !didYouMean(node.name, TOP_NODES)
          ? `"${node.name}" belongs inside a vm "name" { ... } block`
          : guess
            ? `did you mean "${guess}"?`
            : 'the top level has vm "name" { ... }, volume "name" { size 10 }, name "project" and warm #true',
      );
      continue;
    }
    if (node.name === 'name') {
      const v = r.string(node);
      if (!v) continue;
      const problem = nameProblem(v.value);
      if (problem)
        r.error(v.loc, `project name: ${problem}`, 'the project name becomes a folder name: use lower-case letters, digits and "-"');
      else result.name = v.value;
      continue;
    }
    if (node.name === 'volume') {
      topVolume(r, node, result);
      continue;
    }
    if (node.name === 'warm') {
      // the project-wide default of `warm`: every vm that sets none (docs/warm.md)
      if (result.warm) {
        r.error(node.loc, `warm is set twice at the top level (first on line ${result.warm.loc.line})`, 'keep one of them');
        continue;
      }
      const v = r.bool(node);
      if (v !== undefined) result.warm = { value: v, loc: node.args[0]?.loc ?? node.loc };
      continue;
    }
    vmCount++;
    const vm = readVm(r, node, ctx);
    const nameV = node.args[0];
    if (nameV && typeof nameV.value === 'string') {
      const first = seen.get(nameV.value);
      if (first)
        r.error(nameV.loc, `vm "${nameV.value}" is declared twice in this file (first on line ${first.line})`, 'give each vm its own name');
      else seen.set(nameV.value, nameV.loc);
    }
    if (vm) vms.push(vm);
  }
  if (vmCount === 0 && r.count === 0) {
    r.error({ file, line: 1, column: 1 }, 'the file declares no VM', 'add vm "web" { image "debian:12" }');
  }
  result.diagnostics = [...r.diagnostics].sort((a, b) => a.line - b.line || a.column - b.column);
  if (result.diagnostics.length === 0) result.vms = vms;
  else {
    result.volumes = {};
    result.volumeLocs = {};
  }
  return result;
};

function topVolume(r: KdlReader, node: KNode, result: DialectResult): void {
  r.noProps(node);
  const nameV = node.args[0];
  if (!nameV) {
    r.error(node.loc, 'volume needs a name', 'write volume "data" { size 10 }');
    return;
  }
  if (typeof nameV.value !== 'string' || !VOLUME_NAME_RE.test(nameV.value)) {
    r.error(
      nameV.loc,
      `${quote(nameV.value)} cannot be a volume name`,
      'use letters, digits, "_", "." and "-", e.g. volume "data" { size 10 }',
    );
    return;
  }
  const name = nameV.value;
  if (node.args.length > 1) {
    r.error(
      node.args[1].loc,
      'a top-level volume takes one name',
      `to mount it, write volume "${name}:/target" inside a vm; to declare it, write volume "${name}" { size 10 }`,
    );
    return;
  }
  if (node.children === null) {
    r.error(node.loc, `volume "${name}" needs a size`, `write volume "${name}" { size 10 } (GiB)`);
    return;
  }
  const kids = r.children(`volume "${name}"`, node.children, ['size']);
  const sizeNode = kids.find((k) => k.name === 'size');
  if (!sizeNode) {
    if (kids.length === node.children.length)
      r.error(node.loc, `volume "${name}" needs a size`, `write volume "${name}" { size 10 } (GiB)`);
    return;
  }
  const size = r.wholeNumber(sizeNode, {
    min: 1,
    max: MAX_SIZE_GIB,
    unit: 'GiB',
    fromString: (s) =>
      /^\d+(\.\d+)?\s*[mgt]i?b?$/i.test(s)
        ? {
            message: `size is in GiB: "${s}" is not a number of GiB`,
            hint: `write size ${Math.max(1, Math.ceil(Number(/^\d+(\.\d+)?/.exec(s)?.[0] ?? 1)))}`,
          }
        : undefined,
  });
  if (!size) return;
  if (result.volumes[name]) {
    r.error(
      nameV.loc,
      `volume "${name}" is declared twice in this file (first on line ${result.volumeLocs[name].line})`,
      'keep one of them',
    );
    return;
  }
  result.volumes[name] = { size: size.value };
  result.volumeLocs[name] = nameV.loc;
}
