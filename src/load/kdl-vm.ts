/**
 * One `vm "name" { ... }` node of a VMFile.kdl → a VM draft with field locations. Accepts every
 * node of vmctl's VMFile reference plus tend's additions (docs/kdl.md), each described by one row
 * of VM_FIELDS (fields.ts: key, canonical pointer, reader, unit, example); limits come from the
 * canonical schema. Problems are reported through the reader; the caller drops all VMs of a file
 * that has any.
 */
import type { SourceLocation } from '../../schemas/model.js';
import { DEFAULTS, type VmDraft } from '../../schemas/defaults.js';
import { IMAGE_FORMATS, looksLikeCatalogName, normalizeChecksum, urlProblem, type LoadedVm } from './common.js';
import { didYouMean, nameProblem } from '../../schemas/names.js';
import { diskSizeToGiB, memoryWithUnitToMiB } from '../../schemas/units.js';
import { absurdSize } from './sizes.js';
import { Draft, FORMS, matchesForm, limitsAt, type Located } from './fields.js';
import { parsePortSpec } from './ports.js';
import { parseVolumeSpec } from './volumes.js';
import type { KNode } from './kdl-parse.js';
import { KdlReader, quote } from './kdl-read.js';
import {
  choice,
  duration,
  existingPath,
  int,
  list,
  readBlock,
  str,
  suggestName,
  type KdlContext,
  type KdlField,
  type VmCtx,
} from './kdl-fields.js';
import { CLOUD_INIT_FIELD, SSH_FIELD } from './kdl-cloud-init.js';
import { HEALTHCHECK_FIELD, PROVISION_FIELD, TIMEOUTS_FIELD } from './kdl-provision.js';
import { canonicalVideo, GRAPHICS_WORDS, VIDEO_WORDS } from './display-words.js';

export type { KdlContext } from './kdl-fields.js';

const PCI_RE = /^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;

/** image and image-url together: exactly one image source. */
function image(c: VmCtx, nodes: KNode[], nameLoc: SourceLocation, vmName: string): void {
  const img = nodes.find((n) => n.name === 'image');
  const url = nodes.find((n) => n.name === 'image-url');
  if (img && url) {
    const second = img.loc.line > url.loc.line || (img.loc.line === url.loc.line && img.loc.column > url.loc.column) ? img : url;
    c.r.error(second.loc, 'image and image-url are both given: a VM has exactly one image source', 'keep one of them');
    return;
  }
  if (!img && !url) {
    c.r.error(
      nameLoc,
      `vm "${vmName}" has no image`,
      'add image "debian:12" (a catalog name), image "path/to/disk.qcow2" or image-url "https://..."',
    );
    return;
  }
  const s = c.r.string((url ?? img) as KNode);
  if (!s) return;
  if (url) {
    const problem = urlProblem(s.value);
    if (problem) {
      c.r.error(
        s.loc,
        problem,
        looksLikeCatalogName(s.value) ? `for a catalog name write image "${s.value}"` : 'write image-url "https://host/path/image.qcow2"',
      );
      return;
    }
    c.draft.set('/image', { kind: 'url', ref: s.value }, s.loc);
    return;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s.value)) {
    c.r.error(s.loc, `image takes a file path or a catalog name, and "${s.value}" is a URL`, `write image-url "${s.value}"`);
    return;
  }
  if (looksLikeCatalogName(s.value)) c.draft.set('/image', { kind: 'catalog', ref: s.value }, s.loc);
  else {
    const abs = existingPath(c, s, 'the image file');
    if (abs) c.draft.set('/image', { kind: 'path', ref: abs }, s.loc);
  }
}

/** checksum, image-format, image-os refine an image that was read (image() runs first). */
const ofImage =
  (read: (n: KNode, c: VmCtx) => Located<unknown> | undefined) =>
  (n: KNode, c: VmCtx): Located<unknown> | undefined =>
    c.draft.get('/image') ? read(n, c) : undefined;

function checksum(n: KNode, c: VmCtx): Located<string> | undefined {
  const s = c.r.string(n);
  if (!s) return undefined;
  const sum = normalizeChecksum(s.value);
  if (sum) return { value: sum, loc: s.loc };
  c.r.error(
    s.loc,
    `checksum "${s.value}" is not a sha256 or sha512 checksum`,
    'write checksum "sha256:<64 hex digits>" or "sha512:<128 hex digits>"',
  );
  return undefined;
}

function imageFormat(n: KNode, c: VmCtx): Located<string> | undefined {
  const s = c.r.string(n);
  if (!s) return undefined;
  const f = s.value.toLowerCase();
  if ((IMAGE_FORMATS as readonly string[]).includes(f)) return { value: f, loc: s.loc };
  const guess = didYouMean(f, IMAGE_FORMATS);
  c.r.error(
    s.loc,
    `unsupported image format "${s.value}": tend reads ${IMAGE_FORMATS.join(', ')}`,
    guess ? `did you mean image-format "${guess}"?` : undefined,
  );
  return undefined;
}

function network(n: KNode, c: VmCtx): undefined {
  const first = n.args[0];
  if (n.args.length === 1 && (first.value === 'bridge' || first.value === 'bridged')) {
    c.r.error(
      first.loc,
      `network must be one of "user", "tap", "none", not "${first.value}"`,
      'to join a bridge write network "tap" { bridge "br0" }',
    );
    return undefined;
  }
  // vmctl's parser reads the bridge as a property (network "tap" bridge="br0"); its book shows a
  // child node (network "tap" { bridge "br0" }): both are read
  const bridgeProp = n.props.find((p) => p.key === 'bridge');
  const mode = c.r.choice({ ...n, props: n.props.filter((p) => p !== bridgeProp) }, ['user', 'tap', 'none'] as const, true);
  if (!mode) return undefined;
  if ((n.children !== null || bridgeProp) && mode.value !== 'tap') {
    c.r.error(
      bridgeProp?.keyLoc ?? n.childrenLoc ?? n.loc,
      `network "${mode.value}" takes no ${bridgeProp ? 'bridge' : 'block'} (only "tap" has a bridge)`,
      `write network "${mode.value}"`,
    );
    return undefined;
  }
  if (bridgeProp && n.children !== null) {
    c.r.error(bridgeProp.keyLoc, 'the bridge is given twice (bridge= and a bridge node)', 'keep one: network "tap" bridge="br0"');
    return undefined;
  }
  c.draft.set('/network', { mode: mode.value, bridge: null }, mode.loc);
  if (bridgeProp) {
    if (typeof bridgeProp.value !== 'string' || bridgeProp.value.trim() === '') {
      c.r.error(
        bridgeProp.loc,
        `bridge must be a bridge name, not ${JSON.stringify(bridgeProp.value)}`,
        'write network "tap" bridge="br0"',
      );
      return undefined;
    }
    if (!matchesForm(bridgeProp.value, limitsAt('/network/bridge'))) {
      c.r.error(bridgeProp.loc, `bridge ${JSON.stringify(bridgeProp.value)} is not ${FORMS.bridge.what}`, FORMS.bridge.hint);
      return undefined;
    }
    c.draft.set('/network/bridge', bridgeProp.value, bridgeProp.loc);
  }
  if (n.children !== null)
    readBlock(c, 'network', n.children, [{ key: 'bridge', pointer: '/network/bridge', read: str, form: FORMS.bridge }]);
  // vmctl: a tap network without a bridge uses "br0".
  if (mode.value === 'tap' && c.draft.get('/network/bridge') === null) c.draft.set('/network/bridge', 'br0');
  return undefined;
}

function port(n: KNode, c: VmCtx): undefined {
  for (const v of c.r.strings(n)) {
    const p = parsePortSpec(v.value);
    if (!p.ok) c.r.error(v.loc, p.message, p.hint);
    else {
      const { hostAddress, hostPort, guestPort, protocol } = p.value;
      c.draft.push('/ports', { hostAddress: hostAddress ?? DEFAULTS.hostAddress, hostPort: hostPort ?? null, guestPort, protocol }, v.loc);
    }
  }
  return undefined;
}

function volume(n: KNode, c: VmCtx): undefined {
  if (n.children !== null) {
    c.r.error(
      n.childrenLoc ?? n.loc,
      'volume inside a vm mounts a volume and takes no block',
      `write volume "${typeof n.args[0]?.value === 'string' ? n.args[0].value : 'data'}:/mount/point"; declare named volumes with a size at the top level, outside the vm`,
    );
    return undefined;
  }
  for (const v of c.r.strings(n)) {
    const p = parseVolumeSpec(v.value);
    if (!p.ok) c.r.error(v.loc, p.message, p.hint);
    else if (p.value.kind === 'named') c.draft.push('/volumes', p.value, v.loc);
    else {
      const abs = existingPath(c, { value: p.value.source, loc: v.loc }, 'the host folder', 'any');
      if (abs) c.draft.push('/volumes', { ...p.value, source: abs }, v.loc);
    }
  }
  return undefined;
}

function device(n: KNode, c: VmCtx): undefined {
  const s = c.r.string(n, true);
  if (!s) return undefined;
  if (!PCI_RE.test(s.value)) {
    c.r.error(s.loc, `device "${s.value}" is not a PCI address`, 'write device "0000:01:00.0" (as lspci -D shows it)');
    return undefined;
  }
  let romFile: string | null = null;
  if (n.children !== null) {
    for (const k of c.r.children('device', n.children, ['rom-file'])) {
      const v = c.r.string(k);
      const abs = v && existingPath(c, v, 'the rom-file');
      if (!abs) return undefined;
      romFile = abs;
    }
  }
  c.draft.push('/devices', { pci: s.value, romFile }, s.loc);
  return undefined;
}

function boolArg(n: KNode, c: VmCtx): Located<boolean> | undefined {
  const v = c.r.bool(n);
  return v === undefined ? undefined : { value: v, loc: n.args[0]?.loc ?? n.loc };
}

const memoryInMiB = (s: string) => {
  const mib = memoryWithUnitToMiB(s);
  return mib !== null ? { message: `memory is in MiB: "${s}" is not a number of MiB`, hint: `write memory ${mib}` } : undefined;
};
const diskInGiB = (s: string) => {
  const gib = diskSizeToGiB(s);
  return gib === null
    ? undefined
    : { message: `disk is in GiB: "${s}" is not a number of GiB`, hint: `write disk ${Math.max(1, Math.ceil(gib))}` };
};
const none = (): undefined => undefined;
/** `video "virtio"`; `std` (QEMU's word) is the standard VGA. */
const video = (n: KNode, c: VmCtx): Located<string> | undefined => {
  const v = c.r.choice(n, VIDEO_WORDS);
  return v && { value: canonicalVideo(v.value), loc: v.loc };
};

/** disk: whole GiB; a size no disk can have is probably bytes written where GiB are read */
function disk(n: KNode, c: VmCtx, f: KdlField): Located<number> | undefined {
  const v = int(diskInGiB)(n, c, f);
  const absurd = v && absurdSize(v.value, (g) => `disk ${g}`);
  if (v && absurd) {
    c.r.error(v.loc, `disk ${absurd.message}`, absurd.hint);
    return undefined;
  }
  return v;
}

/** Every node a `vm` block takes: VMFile.kdl key → canonical field. */
export const VM_FIELDS: readonly KdlField[] = [
  { key: 'image', pointer: '', read: none },
  { key: 'image-url', pointer: '', read: none },
  { key: 'image-format', pointer: '/image/format', read: ofImage(imageFormat) },
  { key: 'image-os', pointer: '/image/os', read: ofImage(str), form: FORMS.os },
  { key: 'checksum', pointer: '/image/checksum', read: ofImage(checksum) },
  { key: 'vcpus', pointer: '/cpus', read: int() },
  {
    key: 'memory',
    pointer: '/memory',
    unit: 'MiB',
    read: int(memoryInMiB),
    tooSmall: (v) => ({
      message: `memory is in MiB: ${v} MiB is too little to boot (at least 64)`,
      hint: `write memory ${v * 1024} for ${v} GiB`,
    }),
  },
  { key: 'disk', pointer: '/disk', unit: 'GiB', read: disk },
  { key: 'machine', pointer: '/machine', read: str, form: FORMS.machine },
  { key: 'cpu-model', pointer: '/cpuModel', read: str, form: FORMS.cpuModel },
  { key: 'firmware', pointer: '/firmware', read: choice(['bios', 'uefi', 'uefi-secure'] as const) },
  { key: 'accel', pointer: '/accel', read: choice(['auto', 'kvm', 'tcg'] as const) },
  { key: 'backend', pointer: '/backend', read: choice(['qemu', 'libvirt', 'auto'] as const) },
  { key: 'connect', pointer: '/connect', read: str },
  { key: 'network', pointer: '', read: network },
  CLOUD_INIT_FIELD,
  SSH_FIELD,
  PROVISION_FIELD,
  { key: 'port', pointer: '/ports', repeatable: true, read: port },
  { key: 'volume', pointer: '/volumes', repeatable: true, read: volume },
  { key: 'depends-on', pointer: '/dependsOn', repeatable: true, read: list },
  { key: 'restart', pointer: '/restart', read: choice(['always', 'on-failure', 'no'] as const) },
  { key: 'state', pointer: '/runState', read: choice(['running', 'stopped'] as const) },
  { key: 'disposable', pointer: '/disposable', read: boolArg },
  { key: 'stop-grace-period', pointer: '/stopGracePeriod', unit: 's', read: duration },
  { key: 'stop', pointer: '/stopMode', read: choice(['poweroff', 'save'] as const) },
  { key: 'warm', pointer: '/warm', read: boolArg },
  { key: 'extra-args', pointer: '/extraArgs', repeatable: true, read: list },
  { key: 'video', pointer: '/video', read: video },
  { key: 'graphics', pointer: '/graphics', read: choice(GRAPHICS_WORDS) },
  { key: 'device', pointer: '/devices', repeatable: true, read: device },
  HEALTHCHECK_FIELD,
  TIMEOUTS_FIELD,
];

export const VM_NODES = VM_FIELDS.map((f) => f.key);

/** Reads one `vm` node; undefined when it cannot become a VM (the problems are in `r`). */
export function readVm(r: KdlReader, node: KNode, ctx: KdlContext): LoadedVm | undefined {
  const before = r.count;
  r.noProps(node);
  const nameV = node.args[0];
  if (!nameV) {
    r.error(node.loc, 'vm needs a name', 'write vm "web" { image "debian:12" }');
    return undefined;
  }
  if (node.args.length > 1)
    r.error(node.args[1].loc, `vm takes one name, not ${node.args.length} values`, `write vm ${quote(nameV.value)} { ... }`);
  if (typeof nameV.value !== 'string') {
    r.error(nameV.loc, `the vm name must be a string, not ${quote(nameV.value)}`, `write vm "vm-${String(nameV.value)}" { ... }`);
    return undefined;
  }
  const name = nameV.value;
  const problem = nameProblem(name);
  if (problem) r.error(nameV.loc, problem, `write vm "${suggestName(name)}"`);
  if (node.children === null) {
    r.error(node.loc, `vm "${name}" needs a block { ... } with at least an image`, `write vm "${name}" { image "debian:12" }`);
    return undefined;
  }
  const c: VmCtx = { r, ctx, draft: new Draft() };
  image(c, node.children, nameV.loc, name);
  readBlock(c, `vm "${name}"`, node.children, VM_FIELDS);
  const draft = c.draft.value as Partial<VmDraft>;
  if (r.count > before || !draft.image) return undefined;
  return { draft: { ...draft, name, image: draft.image }, loc: { ...node.loc }, fieldLocs: { '/name': nameV.loc, ...c.draft.locs } };
}
