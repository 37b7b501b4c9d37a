/**
 * The field tables of a vms.yml entity (ov's VmSpec): one row per key, with the canonical field it
 * fills. Where ov and tend differ in meaning, the row keeps ov's: `ram`/`disk_size` carry units
 * ("8G", "40 GiB"), `firmware: uefi-insecure` is UEFI without Secure Boot, `ssh.port` is the HOST
 * port forwarded to the guest's sshd. docs/vms-yml.md lists every key.
 */
import { diskSizeToGiB, memoryWithUnitToMiB } from '../../schemas/units.js';
import { FORMS, type Located } from './fields.js';
import {
  bool,
  int,
  isObj,
  named,
  oneOf,
  pathOf,
  report,
  self,
  show,
  str,
  strList,
  valueOf,
  warn,
  type Ignored,
  type Node,
  type VmsContext,
  type VmsField,
} from './vms-yml-ctx.js';
import { cloudInit } from './vms-yml-cloud-init.js';
import { libvirt } from './vms-yml-libvirt.js';
import { network, ssh } from './vms-yml-net.js';

/** ov's sizes: a number with a unit, "8G", "8192M", "40 GiB". A bare number is not a size in ov. */
function sizeText(n: Node, f: VmsField): string | undefined {
  const v = valueOf(n, f);
  if (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*[kmgt]i?b?\s*$/i.test(v)) return v.trim();
  const bare = typeof v === 'number' || (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v));
  report(
    n.ctx,
    pathOf(n, f),
    bare ? `${named(n, f.key)} needs a unit: ${show(v)} is not a size in ov` : `${named(n, f.key)} is not a size: ${show(v)}`,
    `write ${f.example}`,
  );
  return undefined;
}

const ram = (n: Node, _c: VmsContext, f: VmsField): Located<number> | undefined => {
  const s = sizeText(n, f);
  if (s === undefined) return undefined;
  const mib = memoryWithUnitToMiB(s);
  if (mib === null) return undefined;
  return { value: mib, loc: n.ctx.loc.value(pathOf(n, f)) };
};

const diskSize = (n: Node, _c: VmsContext, f: VmsField): Located<number> | undefined => {
  const s = sizeText(n, f);
  if (s === undefined) return undefined;
  const g = diskSizeToGiB(s.replace(/^(\d+(?:\.\d+)?)\s*k/i, (_m, x: string) => `${Number(x) / 1024}M`));
  if (g === null) return undefined;
  if (!Number.isInteger(g) || g < 1) {
    report(
      n.ctx,
      pathOf(n, f),
      `${named(n, f.key)} must be a whole number of GiB: ${s} is ${+g.toFixed(3)} GiB`,
      `write ${f.key}: ${Math.max(1, Math.ceil(g))}G`,
    );
    return undefined;
  }
  return { value: g, loc: n.ctx.loc.value(pathOf(n, f)) };
};

const backendNote = (n: Node): void => {
  if (n.raw.backend === 'qemu' && isObj(n.raw.libvirt))
    warn(
      n.ctx,
      [...n.path, 'libvirt'],
      `libvirt of ${`vm ${n.vm}`} applies only to the libvirt backend, and this VM pins backend: qemu`,
      'remove backend: qemu (vms.yml defaults to auto: libvirt when its daemon answers), or remove the libvirt block',
    );
};

/** base_user: ov's adopt pattern — the image's own account gets the key; no useradd. */
const baseUser = (n: Node, c: VmsContext, f: VmsField): undefined => {
  if (n.kind === 'bootc') {
    report(
      n.ctx,
      pathOf(n, f),
      `base_user of vm ${n.vm} applies to cloud images: a bootc image's users come from the image`,
      'write ssh.user instead',
      'key',
    );
    return undefined;
  }
  const u = str(n, c, f);
  if (!u) return undefined;
  const name = u.value as string;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) {
    report(
      n.ctx,
      pathOf(n, f),
      `base_user "${name}" of vm ${n.vm} is not a valid Linux user name`,
      'use lower-case letters, digits, "_" and "-"',
    );
    return undefined;
  }
  const ci = (n.draft.get('/cloudInit') as Record<string, unknown> | undefined) ?? {};
  n.draft.set('/cloudInit', { ...ci, user: name, adoptUser: true }, u.loc);
  if (n.draft.get('/ssh/user') === undefined) n.draft.set('/ssh/user', name, u.loc);
  return undefined;
};

export const BASE_USER_FIELD: VmsField = { key: 'base_user', pointer: '', read: baseUser };

const CPUS = { pointer: '/cpus', example: 'cpus: 4', read: int } as const;

/** Every key of an entity, in reading order (source first: other rows look at its kind). */
export const ENTITY_FIELDS: readonly VmsField[] = [
  { key: 'kind', pointer: '', read: (n, c, f) => (oneOf({ vm: 'vm' })(n, c, f), undefined) },
  { key: 'disk_size', pointer: '/disk', unit: 'GiB', example: 'disk_size: 40G', read: diskSize },
  { key: 'ram', pointer: '/memory', unit: 'MiB', example: 'ram: 8G', read: ram },
  { key: 'cpus', ...CPUS },
  { key: 'cpu', ...CPUS },
  {
    key: 'machine',
    pointer: '/machine',
    form: FORMS.machine,
    example: 'machine: q35',
    // ov's i440fx is QEMU's pc machine
    read: (n, c, f) => {
      const m = str(n, c, f);
      return m && m.value === 'i440fx' ? { ...m, value: 'pc' } : m;
    },
  },
  {
    key: 'firmware',
    pointer: '/firmware',
    read: (n, c, f) => {
      if (n.raw.firmware === 'uefi' || n.raw.firmware === 'efi') {
        report(
          n.ctx,
          pathOf(n, f),
          `firmware of vm ${n.vm} must be one of bios, uefi-insecure, uefi-secure, not "${String(n.raw.firmware)}"`,
          'write uefi-insecure (UEFI without Secure Boot) or uefi-secure (Secure Boot)',
        );
        return undefined;
      }
      return oneOf({ bios: 'bios', 'uefi-insecure': 'uefi', 'uefi-secure': 'uefi-secure' })(n, c, f);
    },
  },
  { key: 'backend', pointer: '/backend', read: oneOf({ auto: 'auto', libvirt: 'libvirt', qemu: 'qemu' }) },
  {
    key: 'connect',
    pointer: '/connect',
    example: 'connect: qemu:///session',
    read: (n, c, f) => {
      const s = str(n, c, f);
      if (s && !/^[a-z][a-z0-9+]*:\/\//.test(s.value as string)) {
        report(
          n.ctx,
          pathOf(n, f),
          `connect of vm ${n.vm} is not a libvirt URI: ${show(s.value)}`,
          'write e.g. qemu:///session or qemu+ssh://user@host/system',
        );
        return undefined;
      }
      return s;
    },
  },
  { key: 'disposable', pointer: '/disposable', read: bool },
  { key: 'stop', pointer: '/stopMode', read: oneOf({ poweroff: 'poweroff', save: 'save' }) },
  { key: 'warm', pointer: '/warm', read: bool },
  { key: 'accel', pointer: '/accel', read: oneOf({ auto: 'auto', kvm: 'kvm', tcg: 'tcg' }) },
  BASE_USER_FIELD,
  self('network', network),
  self('ssh', ssh),
  self('cloud_init', cloudInit),
  self('libvirt', (n) => {
    backendNote(n);
    libvirt(n);
  }),
];

/** Keys people write that ov spells differently: what to write instead. */
export const ENTITY_ADVICE: Record<string, string> = {
  memory: 'vms.yml says ram, with a unit: write ram: 8G',
  memory_mb: 'vms.yml says ram, with a unit: write ram: 8G',
  vcpus: 'write cpus: 4',
  vcpu: 'write cpus: 4',
  disk: 'write disk_size: 40G',
  image: 'the image is part of source: write source: {kind: cloud_image, url: https://...} or source: {kind: bootc, image: ...}',
  url: 'the URL is part of source: write source: {kind: cloud_image, url: https://...}',
  ports: 'forwards go under network: write network: {port_forwards: ["8080:80"]}',
  uefi: 'write firmware: uefi-insecure (or uefi-secure)',
};

/** ov keys of an entity tend does not act on. */
export const ENTITY_IGNORED: Ignored = {
  lifecycle: 'it is a label in ov too (informational only)',
  autostart: 'tend keeps VMs running itself: run `tend watch` (or `tend install` for a service)',
  eval: "ov's eval checks are not run by tend; use a healthcheck or provision steps",
  deploy_eval: "ov's eval checks are not run by tend",
  snapshot: 'tend has no snapshots',
};

/** Reads the rows that need the whole entity (strList re-exported for the cloud_init reader). */
export { strList };
