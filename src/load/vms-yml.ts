/**
 * The vms.yml loader (ov's dialect): `vms.<name>` entities (ov's `kind: vm`) → VM drafts of the
 * canonical model. YAML with positions → one field table per map (vms-yml-fields.ts) → drafts.
 * Never throws on bad input: every problem is a diagnostic at file:line:column, and every key is
 * either read, named in a warning (ov has it, tend does not act on it), or an error.
 * The accepted keys are documented in docs/vms-yml.md.
 */
import { dirname } from 'node:path';
import type { ImageSource } from '../../schemas/model.js';
import type { VmDraft } from '../../schemas/defaults.js';
import { didYouMean, nameProblem } from '../../schemas/names.js';
import type { DialectLoader, DialectResult, LoadedVm } from './common.js';
import { normalizeChecksum, urlProblem } from './common.js';
import { Draft } from './fields.js';
import { readYaml, type YamlPath } from './compose-yaml.js';
import { isObj, oneOf, readMap, report, show, str, warn, type Node, type Obj, type VmsContext, type VmsField } from './vms-yml-ctx.js';
import { ENTITY_ADVICE, ENTITY_FIELDS, ENTITY_IGNORED } from './vms-yml-fields.js';

/** ov's vms.yml defaults that differ from tend's own (docs/vms-yml.md). */
export const VMS_YML_DEFAULTS = {
  /** ov: libvirt when its daemon answers, else QEMU */
  backend: 'auto',
  /** ov's user for a cloud image without base_user */
  cloudImageUser: 'ov',
  /** ov's user for a bootc image */
  bootcUser: 'root',
} as const;

const SOURCE_KINDS = ['cloud_image', 'bootc'];

function checksum(n: Node, img: ImageSource): void {
  const c = n.raw.checksum;
  const p = [...n.path, 'checksum'];
  if (typeof c === 'string') {
    const v = normalizeChecksum(c);
    if (v) img.checksum = v;
    else
      report(
        n.ctx,
        p,
        `checksum "${c}" of vm ${n.vm} is not a sha256 or sha512 digest`,
        'write checksum: {type: sha256, value: <64 hex digits>}',
      );
    return;
  }
  if (!isObj(c)) {
    report(n.ctx, p, `checksum of vm ${n.vm} must be a map like {type: sha256}, not ${show(c)}`);
    return;
  }
  for (const k of Object.keys(c))
    if (k !== 'type' && k !== 'value') {
      const guess = didYouMean(k, ['type', 'value']);
      report(
        n.ctx,
        [...p, k],
        `unknown key \`${k}\` in checksum of vm ${n.vm}${guess ? `; did you mean \`${guess}\`?` : ''}`,
        guess ? undefined : 'known keys: type, value',
        'key',
      );
      return;
    }
  const type = c.type ?? 'sha256';
  if (type !== 'sha256' && type !== 'sha512') {
    const guess = typeof type === 'string' ? didYouMean(type.toLowerCase(), ['sha256', 'sha512']) : undefined;
    report(
      n.ctx,
      [...p, 'type'],
      `checksum type of vm ${n.vm} must be sha256 or sha512, not ${show(type)}`,
      guess ? `did you mean ${guess}?` : undefined,
    );
    return;
  }
  if (c.value === undefined || c.value === '' || c.value === null) {
    // ov: the value comes from the <url>.SHA256 sidecar, and there must be one
    img.sidecar = type;
    return;
  }
  const hex = typeof c.value === 'string' ? c.value.trim().toLowerCase() : '';
  const ok = /^[0-9a-f]+$/.test(hex) && hex.length === (type === 'sha256' ? 64 : 128);
  if (!ok) {
    report(
      n.ctx,
      [...p, 'value'],
      `checksum value of vm ${n.vm} is not a ${type} digest (${type === 'sha256' ? 64 : 128} hex digits)`,
      'leave value out to read it from the <url>.SHA256 file published next to the image',
    );
    return;
  }
  img.checksum = `${type}:${hex}`;
}

function rootSize(n: Node): number | null | undefined {
  const v = n.raw.root_size;
  if (v === undefined) return null;
  const m = typeof v === 'string' ? /^\s*(\d+)\s*(G|GB|GiB)\s*$/i.exec(v) : null;
  if (!m || Number(m[1]) < 1) {
    report(
      n.ctx,
      [...n.path, 'root_size'],
      `root_size of vm ${n.vm} must be a whole number of GiB with its unit, not ${show(v)}`,
      'write root_size: 10G',
    );
    return undefined;
  }
  return Number(m[1]);
}

/** `source`: where the disk comes from. Returns the image, or null after reporting why not. */
function source(n: Node): ImageSource | null {
  const raw = n.entity.source;
  const p = [...n.path, 'source'];
  if (raw === undefined) {
    report(
      n.ctx,
      n.path,
      `vm ${n.vm} has no \`source\``,
      'add source: {kind: cloud_image, url: https://...} or source: {kind: bootc, image: <container image>}',
      'key',
    );
    return null;
  }
  if (!isObj(raw)) {
    report(n.ctx, p, `source of vm ${n.vm} must be a map of keys, not ${show(raw)}`);
    return null;
  }
  const s: Node = { ...n, raw, path: p };
  const kind = raw.kind;
  if (typeof kind !== 'string' || !SOURCE_KINDS.includes(kind)) {
    if (kind === undefined)
      report(n.ctx, p, `source of vm ${n.vm} has no \`kind\``, 'add kind: cloud_image (with url) or kind: bootc (with image)', 'key');
    else if (typeof kind === 'string' && ['clone', 'imported', 'bootstrap'].includes(kind))
      report(
        n.ctx,
        [...p, 'kind'],
        `source kind ${kind} of vm ${n.vm} is not supported by tend`,
        'tend builds VMs from kind: cloud_image (a URL) or kind: bootc (a container image)',
      );
    else {
      const guess = typeof kind === 'string' ? didYouMean(kind, SOURCE_KINDS) : undefined;
      report(
        n.ctx,
        [...p, 'kind'],
        `source kind of vm ${n.vm} must be cloud_image or bootc, not ${show(kind)}`,
        guess ? `did you mean ${guess}?` : undefined,
      );
    }
    return null;
  }
  const cloud = kind === 'cloud_image';
  s.kind = kind as Node['kind'];
  n.kind = s.kind;
  const CLOUD = ['url', 'checksum', 'cache', 'base_user'];
  const BOOTC = ['image', 'transport', 'rootfs', 'root_size', 'kernel_args'];
  let img: ImageSource | null = null;
  const fields: VmsField[] = [{ key: 'kind', pointer: '', read: () => undefined }];
  const other = (keys: string[], k: string): VmsField[] =>
    keys.map((key) => ({
      key,
      pointer: '',
      read: (m: Node) => {
        report(
          m.ctx,
          [...m.path, key],
          `${key} belongs to a source of kind ${k}, and vm ${m.vm} has kind ${kind}`,
          `remove ${key}, or write kind: ${k}`,
          'key',
        );
        return undefined;
      },
    }));
  if (cloud) {
    const url = raw.url;
    if (url === undefined)
      report(n.ctx, p, `source of vm ${n.vm} (kind cloud_image) has no \`url\``, 'add url: https://.../image.qcow2', 'key');
    fields.push(
      {
        key: 'url',
        pointer: '',
        read: (m, c, f) => {
          const u = str(m, c, f);
          if (!u) return undefined;
          const problem = urlProblem(u.value as string);
          if (problem) {
            report(m.ctx, [...m.path, 'url'], `url of vm ${m.vm}: ${problem}`);
            return undefined;
          }
          img = { kind: 'url', ref: u.value as string };
          m.draft.at('/image', u.loc);
          return undefined;
        },
      },
      { key: 'checksum', pointer: '', read: () => undefined },
      {
        key: 'cache',
        pointer: '',
        read: (m) => (
          warn(
            m.ctx,
            [...m.path, 'cache'],
            `source.cache of vm ${m.vm} is not applied by tend: images are kept in tend's data folder (tend image ls)`,
          ),
          undefined
        ),
      },
      { key: 'base_user', pointer: '', read: () => undefined },
      ...other(BOOTC, 'bootc'),
    );
  } else {
    if (raw.image === undefined)
      report(
        n.ctx,
        p,
        `source of vm ${n.vm} (kind bootc) has no \`image\``,
        'add image: <the bootc container image, as podman names it>',
        'key',
      );
    fields.push(
      {
        key: 'image',
        pointer: '',
        read: (m, c, f) => {
          const u = str(m, c, f);
          if (!u) return undefined;
          const ref = (u.value as string).trim();
          if (/\s/.test(ref) || ref.startsWith('-')) {
            report(
              m.ctx,
              [...m.path, 'image'],
              `image "${ref}" of vm ${m.vm} is not a container image reference`,
              'write e.g. quay.io/fedora/fedora-bootc:41 or localhost/my-image',
            );
            return undefined;
          }
          img = { kind: 'bootc', ref };
          m.draft.at('/image', u.loc);
          return undefined;
        },
      },
      {
        key: 'transport',
        pointer: '',
        read: oneOf({ registry: 'registry', 'containers-storage': 'containers-storage', oci: 'oci', 'oci-archive': 'oci-archive' }),
      },
      { key: 'rootfs', pointer: '', read: oneOf({ ext4: 'ext4', xfs: 'xfs', btrfs: 'btrfs' }) },
      { key: 'root_size', pointer: '', read: () => undefined },
      { key: 'kernel_args', pointer: '', read: str },
      ...other(CLOUD, 'cloud_image'),
    );
  }
  readMap(s, fields);
  if (!img) return null;
  const image = img as ImageSource;
  if (cloud && raw.checksum !== undefined) checksum(s, image);
  if (!cloud) {
    const rs = rootSize(s);
    if (rs === undefined) return null;
    const transport =
      typeof raw.transport === 'string' && ['registry', 'containers-storage', 'oci', 'oci-archive'].includes(raw.transport)
        ? raw.transport
        : 'registry';
    const rootfs = typeof raw.rootfs === 'string' && ['ext4', 'xfs', 'btrfs'].includes(raw.rootfs) ? raw.rootfs : null;
    const kargs = typeof raw.kernel_args === 'string' ? raw.kernel_args.trim().split(/\s+/).filter(Boolean) : [];
    image.bootc = {
      transport: transport as 'registry',
      rootfs: rootfs as 'ext4' | null,
      rootSize: rs,
      kernelArgs: kargs,
    };
  }
  return image;
}

function entityToVm(ctx: VmsContext, name: string, raw: unknown): LoadedVm | null {
  const path: YamlPath = ['vms', name];
  const loc = ctx.loc.key(path);
  const nameErr = nameProblem(name);
  if (nameErr)
    report(
      ctx,
      path,
      `vm name ${nameErr.replace(/^the name /, '')}`,
      'VM names become file and host names: use lower-case letters, digits and "-"',
      'key',
    );
  if (!isObj(raw)) {
    if (raw === null || raw === undefined)
      report(ctx, path, `vm ${name} is empty`, 'give it a source: `source: {kind: cloud_image, url: https://...}`', 'key');
    else report(ctx, path, `vm ${name} must be a map of keys, not ${show(raw)}`);
    return null;
  }
  const draft = new Draft();
  draft.set('/service', name, loc);
  draft.at('/name', loc);
  const n: Node = { raw, path, ctx, draft, vm: name, kind: undefined, entity: raw };
  const image = source(n);
  if (raw.cpus !== undefined && raw.cpu !== undefined)
    report(ctx, [...path, 'cpu'], `vm ${name} has both cpus and cpu (the same setting)`, 'keep one of them', 'key');
  if (isObj(raw.source) && raw.base_user !== undefined && raw.source.base_user !== undefined)
    report(ctx, [...path, 'base_user'], `vm ${name} has base_user twice (here and in source)`, 'keep one of them', 'key');
  // base_user sits in source in ov's authoring reference, at the entity level in its skill's example
  if (n.kind === 'cloud_image' && isObj(raw.source) && raw.source.base_user !== undefined) {
    const src = raw.source as Obj;
    readMap(
      { ...n, raw: { base_user: src.base_user }, path: [...path, 'source'] },
      ENTITY_FIELDS.filter((f) => f.key === 'base_user'),
    );
  }
  readMap(n, [{ key: 'source', pointer: '', read: () => undefined }, ...ENTITY_FIELDS], ENTITY_IGNORED, ENTITY_ADVICE);
  if (!image) return null;
  // ov's defaults where they differ from tend's
  if (draft.get('/backend') === undefined) draft.set('/backend', VMS_YML_DEFAULTS.backend);
  if (draft.get('/ssh/user') === undefined && draft.get('/cloudInit/user') === undefined)
    draft.set('/ssh/user', n.kind === 'bootc' ? VMS_YML_DEFAULTS.bootcUser : VMS_YML_DEFAULTS.cloudImageUser);
  const d = { ...(draft.value as Omit<VmDraft, 'name' | 'image'>), name, image } as VmDraft;
  return { draft: d, loc, fieldLocs: { ...draft.locs } };
}

export const loadVmsYml: DialectLoader = (file, text, env = process.env) => {
  const result: DialectResult = { vms: [], volumes: {}, volumeLocs: {}, diagnostics: [] };
  const { data, locator, diagnostics } = readYaml(file, text);
  if (diagnostics.length) {
    result.diagnostics = diagnostics;
    return result;
  }
  const ctx: VmsContext = { file, dir: dirname(file), env, loc: locator, diagnostics: [] };
  if (data === null || data === undefined) {
    report(ctx, [], 'the file is empty', 'declare VMs: `vms: { arch: { source: { kind: cloud_image, url: https://... } } }`');
  } else if (!isObj(data)) {
    report(ctx, [], 'the file must be a map with a `vms` key', 'start with `vms:`');
  } else {
    let reportedTop = false;
    for (const k of Object.keys(data)) {
      if (k === 'vms') continue;
      if (k === 'warm') {
        // tend's project-wide default of `warm`: every VM that sets none (docs/warm.md)
        if (typeof data.warm === 'boolean') result.warm = { value: data.warm, loc: locator.value(['warm']) };
        else report(ctx, ['warm'], `warm at the top level must be true or false, not ${show(data.warm)}`, 'write warm: true');
        continue;
      }
      const guess = didYouMean(k, ['vms', 'warm']);
      reportedTop = true;
      report(
        ctx,
        [k],
        `unknown key \`${k}\` at the top level${guess ? `; did you mean \`${guess}\`?` : ''}`,
        guess ? undefined : "a vms.yml holds `vms:` (and tend's project-wide `warm:`) only",
        'key',
      );
    }
    const vms = data.vms;
    if (vms === undefined && !reportedTop) report(ctx, [], 'the file has no `vms`', 'add `vms:` with at least one VM', 'key');
    else if (vms === undefined) {
      // the misspelt key was reported
    } else if (!isObj(vms) || Object.keys(vms).length === 0)
      report(
        ctx,
        ['vms'],
        vms === null || isObj(vms) ? 'vms is empty: the file declares no VMs' : `vms must be a map of VM names, not ${show(vms)}`,
        'add a VM, e.g. `arch: { source: { kind: cloud_image, url: https://... } }`',
        'key',
      );
    else
      for (const [name, raw] of Object.entries(vms)) {
        const vm = entityToVm(ctx, name, raw);
        if (vm) result.vms.push(vm);
      }
  }
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
