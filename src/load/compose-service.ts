/**
 * One compose service → its VM drafts (one per replica). Each key the service takes is one row
 * of SERVICE_FIELDS (fields.ts: key, canonical pointer, reader, unit); the list-valued keys and
 * the cloud_init and healthcheck maps have readers of their own (compose-lists.ts,
 * compose-cloud-init.ts); the image, compose-image.ts. The JSON Schema check (compose-schema.ts) comes first; values it or a
 * reader rejects are left out of the draft (the diagnostic already says why), so later checks on
 * the canonical model do not report them twice.
 */
import { MAX_SIZE_GIB, type SourceLocation } from '../../schemas/model.js';
import type { VmDraft } from '../../schemas/defaults.js';
import type { LoadedVm } from './common.js';
import { didYouMean, nameProblem } from '../../schemas/names.js';
import { Draft, FORMS, limitsAt, matchesForm, type Located } from './fields.js';
import type { YamlPath } from './compose-yaml.js';
import { VOLUME_NAME_RE } from './volumes.js';
import {
  bool,
  checked,
  durationField,
  fileField,
  int,
  isObj,
  nonEmpty,
  readFields,
  report,
  sizeField,
  sizeGiB,
  stringList,
  type ComposeContext,
  type ComposeField,
  type Svc,
} from './compose-ctx.js';
import { dependsOn, devices, instanceNames, ports, provision, volumes } from './compose-lists.js';
import { cloudInit, healthcheck } from './compose-cloud-init.js';
import { dockerfile, image } from './compose-image.js';
import { canonicalVideo, type VIDEO_WORDS } from './display-words.js';

export { report, sizeGiB, type ComposeContext } from './compose-ctx.js';
export { instanceNames } from './compose-lists.js';

export const MAX_REPLICAS = 64;

export function replicasOf(raw: unknown): number {
  return isObj(raw) &&
    typeof raw.replicas === 'number' &&
    Number.isInteger(raw.replicas) &&
    raw.replicas >= 1 &&
    raw.replicas <= MAX_REPLICAS
    ? raw.replicas
    : 1;
}

/** `vm.video` (an enum the schema checked); `std`, QEMU's word, is the standard VGA. */
function video(s: Svc, c: ComposeContext, f: ComposeField): Located<unknown> | undefined {
  const v = checked(s, c, f);
  return v && { value: canonicalVideo(v.value as (typeof VIDEO_WORDS)[number]), loc: v.loc };
}

/** `vm.uefi: true` means firmware uefi, unless the service also says `firmware: bios`. */
function uefi(s: Svc): Located<string> | undefined {
  const vm = s.raw.vm;
  if (!isObj(vm) || vm.uefi !== true) return undefined;
  const path = [...s.base, 'vm', 'uefi'];
  if (s.raw.firmware === 'bios') {
    report(s.ctx, path, `vm.uefi: true contradicts firmware: bios in service ${String(s.base[1])}`, 'keep one of them');
    s.draft.at('/firmware', s.ctx.loc.value(path));
    return undefined;
  }
  return { value: 'uefi', loc: s.ctx.loc.value(path) };
}

function network(s: Svc): Located<unknown> | undefined {
  const { raw, base, ctx } = s;
  const net = raw.network;
  const loc = ctx.loc.value([...base, 'network']);
  const modes = ['user', 'tap', 'none'];
  if (typeof net === 'string' && modes.includes(net)) return { value: { mode: net }, loc };
  if (!isObj(net) || typeof net.mode !== 'string' || !modes.includes(net.mode)) return undefined;
  if (typeof net.bridge === 'string' && !matchesForm(net.bridge, limitsAt('/network/bridge'))) {
    report(ctx, [...base, 'network', 'bridge'], `network bridge "${net.bridge}" is not ${FORMS.bridge.what}`, FORMS.bridge.hint);
    s.draft.at('/network', loc);
    return undefined;
  }
  if (typeof net.bridge === 'string' && net.mode !== 'tap') {
    report(
      ctx,
      [...base, 'network', 'bridge'],
      `a bridge only applies to network mode tap, not ${net.mode}`,
      `write mode: tap, or remove bridge`,
    );
    s.draft.at('/network', loc);
    return undefined;
  }
  return { value: { mode: net.mode, bridge: typeof net.bridge === 'string' ? net.bridge : null }, loc };
}

function ssh(s: Svc): undefined {
  if (!isObj(s.raw.ssh)) return undefined;
  s.draft.set('/ssh', {}, s.ctx.loc.key([...s.base, 'ssh']));
  readFields(s, SSH_FIELDS);
  return undefined;
}

const SSH_FIELDS: readonly ComposeField[] = [
  { key: 'ssh.user', pointer: '/ssh/user', read: nonEmpty, form: FORMS.sshUser },
  { key: 'ssh.port', pointer: '/ssh/port', read: int },
  { key: 'ssh.private_key', pointer: '/ssh/privateKey', read: fileField('the private key') },
];

const TIMEOUT_FIELDS: readonly ComposeField[] = (['start', 'ssh', 'login', 'cloud_init'] as const).map((k) => ({
  key: `timeouts.${k}`,
  pointer: `/timeouts/${k === 'cloud_init' ? 'cloudInit' : k}`,
  unit: 's',
  read: durationField,
}));

function timeouts(s: Svc): undefined {
  if (!isObj(s.raw.timeouts)) return undefined;
  s.draft.set('/timeouts', {});
  readFields(s, TIMEOUT_FIELDS);
  return undefined;
}

/** A reader that places values itself. */
const self = (key: string, fn: (s: Svc) => Located<unknown> | undefined | void): ComposeField => ({
  key,
  pointer: '',
  read: (s) => fn(s) ?? undefined,
});

/** Every key of a service that becomes part of the VM: tend.yaml key → canonical field. */
export const SERVICE_FIELDS: readonly ComposeField[] = [
  { key: 'vm.vcpu', pointer: '/cpus', read: int },
  { key: 'vm.memory_mb', pointer: '/memory', unit: 'MiB', read: int },
  { key: 'vm.disk_size', pointer: '/disk', unit: 'GiB', read: sizeField },
  { key: 'vm.machine', pointer: '/machine', read: nonEmpty, form: FORMS.machine },
  { key: 'vm.cpu_model', pointer: '/cpuModel', read: nonEmpty, form: FORMS.cpuModel },
  { key: 'vm.extra_args', pointer: '/extraArgs', read: stringList },
  { key: 'vm.video', pointer: '/video', read: video },
  { key: 'vm.graphics', pointer: '/graphics', read: checked },
  { key: 'vm.uefi', pointer: '/firmware', read: uefi },
  { key: 'firmware', pointer: '/firmware', read: checked },
  { key: 'accel', pointer: '/accel', read: checked },
  { key: 'backend', pointer: '/backend', read: checked },
  { key: 'connect', pointer: '/connect', read: nonEmpty },
  { key: 'libvirt.snippets', pointer: '/libvirt/snippets', read: stringList },
  { key: 'restart', pointer: '/restart', read: checked },
  { key: 'state', pointer: '/runState', read: checked },
  { key: 'disposable', pointer: '/disposable', read: bool },
  { key: 'network', pointer: '/network', read: network },
  self('ports', (s) => ports(s, String(s.base[1]), replicasOf(s.raw))),
  self('volumes', volumes),
  self('devices', devices),
  self('depends_on', dependsOn),
  { key: 'stop_grace_period', pointer: '/stopGracePeriod', unit: 's', read: durationField },
  { key: 'stop', pointer: '/stopMode', read: checked },
  { key: 'warm', pointer: '/warm', read: bool },
  self('timeouts', timeouts),
  self('cloud_init', cloudInit),
  self('healthcheck', healthcheck),
  self('provision', provision),
  self('ssh', ssh),
];

/** Build the drafts of one service (one per replica). */
export function serviceToVms(ctx: ComposeContext, svcName: string, raw: unknown): LoadedVm[] {
  const base: YamlPath = ['services', svcName];
  const svcLoc = ctx.loc.key(base);
  const nameErr = nameProblem(svcName);
  if (nameErr)
    report(
      ctx,
      base,
      `service name ${nameErr.replace(/^the name /, '')}`,
      'service names become VM and host names: use lower-case letters, digits and "-"',
      'key',
    );
  if (!isObj(raw)) {
    if (raw === null) report(ctx, base, `service ${svcName} is empty`, 'give it at least an image: `image: debian:12`', 'key');
    return [];
  }
  const draft = new Draft();
  draft.set('/service', svcName, svcLoc);
  draft.at('/name', svcLoc);
  let img = image(ctx, base, raw);
  // (a misspelt `image` key is reported as such: "did you mean `image`" covers "has no image")
  const misspelt = Object.keys(raw).some((k) => k !== 'image' && didYouMean(k, ['image', 'dockerfile']) !== undefined);
  if (raw.image === undefined && raw.dockerfile === undefined && !misspelt) {
    report(
      ctx,
      base,
      `service ${svcName} has no \`image\``,
      'add `image: debian:12` (a catalog name), an https URL, or a path to a local image (or a `dockerfile:` with FROM)',
      'key',
    );
  }
  if (raw.image !== undefined) draft.at('/image', ctx.loc.value([...base, 'image']));

  const replicas = replicasOf(raw);
  if (replicas > 1 && !nameErr) {
    const problem = nameProblem(`${svcName}-${replicas - 1}`);
    if (problem) report(ctx, [...base, 'replicas'], `the replica names would be invalid: ${problem}`, 'shorten the service name');
  }
  readFields({ raw, base, ctx, draft }, SERVICE_FIELDS);
  if (typeof raw.dockerfile === 'string' && raw.dockerfile !== '') {
    const fromImage = dockerfile({ raw, base, ctx, draft }, raw.dockerfile, img === null);
    img ??= fromImage;
  }

  if (!img) return [];
  const source = img;
  const d0 = draft.value as Omit<VmDraft, 'name' | 'image'>;
  return instanceNames(svcName, replicas).map((name, i) => {
    const d: VmDraft = { ...structuredClone(d0), image: { ...source }, name };
    if (replicas > 1 && d.cloudInit && typeof d.cloudInit.hostname === 'string') d.cloudInit.hostname = `${d.cloudInit.hostname}-${i}`;
    const notes: string[] = [];
    if (i > 0) {
      // holos: replica i gets the fixed host port + i
      for (const p of d.ports ?? []) {
        if (typeof p?.hostPort !== 'number') continue;
        notes.push(`host port ${p.hostPort + i} → guest ${String(p.guestPort)} (${p.hostPort} + replica ${i}, as holos does)`);
        p.hostPort += i;
      }
    }
    return { draft: d, loc: svcLoc, fieldLocs: { ...draft.locs }, ...(notes.length ? { notes } : {}) };
  });
}

/** Top-level named volumes: name -> size GiB (default 10). */
export function namedVolumes(
  ctx: ComposeContext,
  raw: unknown,
): { volumes: Record<string, { size: number }>; locs: Record<string, SourceLocation> } {
  const volumes: Record<string, { size: number }> = {};
  const locs: Record<string, SourceLocation> = {};
  if (!isObj(raw)) return { volumes, locs };
  for (const [name, v] of Object.entries(raw)) {
    const p = ['volumes', name];
    if (!VOLUME_NAME_RE.test(name)) {
      report(ctx, p, `volume name "${name}" cannot be a file name`, 'use letters, digits, "_", "." and "-"', 'key');
      continue;
    }
    let size = 10;
    if (isObj(v) && v.size !== undefined) {
      const g = sizeGiB(ctx, [...p, 'size'], v.size);
      if (g === undefined) continue;
      if (g > MAX_SIZE_GIB) {
        report(ctx, [...p, 'size'], `size of volume ${name} must be at most ${MAX_SIZE_GIB} GiB (64 TiB), not ${g} GiB`);
        continue;
      }
      size = g;
    }
    volumes[name] = { size };
    locs[name] = ctx.loc.key(p);
  }
  return { volumes, locs };
}
