/**
 * The field tables of a vms.yml entity (ov's VmSpec): one row per key, with the canonical field it
 * fills. Where ov and tend differ in meaning, the row keeps ov's: `ram`/`disk_size` carry units
 * ("8G", "40 GiB"), `firmware: uefi-insecure` is UEFI without Secure Boot, `ssh.port` is the HOST
 * port forwarded to the guest's sshd. docs/vms-yml.md lists every key.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { diskSizeToGiB, memoryWithUnitToMiB } from '../../schemas/units.js';
import { DEFAULTS } from '../../schemas/defaults.js';
import { resolvePath } from './common.js';
import { parsePortSpec } from './ports.js';
import { FORMS, type Located } from './fields.js';
import {
  bool,
  child,
  int,
  isObj,
  named,
  oneOf,
  pathOf,
  readMap,
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

/** network: mode user | bridge (a host bridge: tend's tap on that bridge) | nat (libvirt's own network: not supported). */
function network(n: Node): void {
  const net = child(n, 'network');
  if (!net) return;
  readMap(
    net,
    [
      {
        key: 'mode',
        pointer: '',
        read: (m, c, f) => {
          const mode = oneOf({ user: 'user', bridge: 'tap', nat: 'nat' })(m, c, f);
          if (!mode) return undefined;
          const loc = mode.loc;
          if (mode.value === 'nat') {
            report(
              m.ctx,
              pathOf(m, f),
              `network mode nat of vm ${m.vm} (libvirt's default NAT network) is not supported: tend never creates or joins a libvirt network`,
              'write mode: user (outbound access through NAT, with port forwards), or mode: bridge with bridge: <host bridge>',
            );
            return undefined;
          }
          if (mode.value === 'tap' && typeof m.raw.bridge !== 'string') {
            report(m.ctx, pathOf(m, f), `network mode bridge of vm ${m.vm} needs the name of a host bridge`, 'add bridge: br0');
            return undefined;
          }
          if (mode.value === 'user' && m.raw.bridge !== undefined) {
            report(
              m.ctx,
              [...m.path, 'bridge'],
              `a bridge only applies to network mode bridge, not user`,
              'write mode: bridge, or remove bridge',
              'key',
            );
            return undefined;
          }
          m.draft.set('/network', { mode: mode.value, bridge: mode.value === 'tap' ? m.raw.bridge : null }, loc);
          return undefined;
        },
      },
      { key: 'bridge', pointer: '', read: (m, c, f) => (str(m, c, f), undefined) },
      self('port_forwards', portForwards),
    ],
    {
      mac: 'tend gives every VM a stable MAC address of its own',
      model: (v) => (v === undefined || v === 'virtio' || v === 'virtio-net-pci' ? undefined : 'tend always uses a virtio-net NIC'),
    },
  );
}

/** ssh.port (host) and network.port_forwards ("host:guest") become canonical port forwards. */
function addPort(n: Node, spec: string, path: readonly (string | number)[]): void {
  const r = parsePortSpec(spec);
  if (!r.ok) {
    report(n.ctx, path, r.message, r.hint);
    return;
  }
  const ports = (n.draft.get('/ports') as unknown[] | undefined) ?? [];
  n.draft.push(
    '/ports',
    { ...r.value, hostAddress: r.value.hostAddress ?? DEFAULTS.hostAddress, hostPort: r.value.hostPort ?? null },
    n.ctx.loc.value(path),
  );
  void ports;
}

function portForwards(n: Node): void {
  const v = n.raw.port_forwards;
  const p = [...n.path, 'port_forwards'];
  if (!Array.isArray(v)) {
    report(
      n.ctx,
      p,
      `port_forwards of vm ${n.vm} must be a list of "host:guest" strings, not ${show(v)}`,
      'write port_forwards: ["8080:80"]',
    );
    return;
  }
  v.forEach((item, i) => {
    if (typeof item !== 'string' && typeof item !== 'number') {
      report(n.ctx, [...p, i], `item ${i + 1} of port_forwards of vm ${n.vm} must be a "host:guest" string, not ${show(item)}`);
      return;
    }
    addPort(n, String(item), [...p, i]);
  });
}

/** The first ~/.ssh/*.pub, as ov's key_source auto picks it (none: nothing is added). */
function firstUserKey(env: NodeJS.ProcessEnv): string | undefined {
  const dir = join(resolvePath('~', '/', env), '.ssh');
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((f) => f.endsWith('.pub'))
      .sort();
  } catch {
    return undefined;
  }
  for (const f of names) {
    try {
      const k = readFileSync(join(dir, f), 'utf8').trim();
      if (/^(ssh-|ecdsa-|sk-)/.test(k)) return k;
    } catch {
      // unreadable: try the next one
    }
  }
  return undefined;
}

function addAuthorizedKey(n: Node, key: string): void {
  const ci = (n.draft.get('/cloudInit') as Record<string, unknown> | undefined) ?? {};
  const keys = Array.isArray(ci.sshAuthorizedKeys) ? (ci.sshAuthorizedKeys as string[]) : [];
  n.draft.set('/cloudInit', { ...ci, sshAuthorizedKeys: [...keys, key] });
}

const keySource = (n: Node, _c: VmsContext, f: VmsField): undefined => {
  const v = valueOf(n, f);
  const path = pathOf(n, f);
  if (v === 'generate' || v === 'auto' || v === 'none') {
    if (v === 'auto') {
      const k = firstUserKey(n.ctx.env);
      if (k) addAuthorizedKey(n, k);
    }
    if (v === 'none')
      warn(
        n.ctx,
        path,
        `ssh.key_source none of vm ${n.vm}: tend still puts its own per-VM key into the guest`,
        'tend needs it to see the VM ready and for exec, ssh and provisioning',
      );
    return undefined;
  }
  if (typeof v !== 'string' || v === '') {
    report(n.ctx, path, `${named(n, f.key)} must be auto, generate, none or the path of a public key, not ${show(v)}`);
    return undefined;
  }
  const abs = resolvePath(v, n.ctx.dir, n.ctx.env);
  if (!v.endsWith('.pub')) {
    report(n.ctx, path, `ssh.key_source of vm ${n.vm} must name a public key (a .pub file), not ${show(v)}`, `write ${v}.pub`);
    return undefined;
  }
  let text: string;
  try {
    if (!statSync(abs).isFile()) throw new Error('not a file');
    text = readFileSync(abs, 'utf8').trim();
  } catch {
    report(
      n.ctx,
      path,
      `the public key "${v}" does not exist (looked for ${abs})`,
      'paths are relative to the folder of this file; ~ is your home folder',
    );
    return undefined;
  }
  if (!/^(ssh-|ecdsa-|sk-)/.test(text)) {
    report(n.ctx, path, `"${v}" is not an SSH public key`, 'it should start with ssh-ed25519, ssh-rsa or ecdsa-');
    return undefined;
  }
  addAuthorizedKey(n, text);
  // the matching private key, when it sits next to it, is the one tend logs in with (as ov's ssh does)
  const priv = abs.slice(0, -'.pub'.length);
  if (existsSync(priv)) n.draft.set('/ssh/privateKey', priv, n.ctx.loc.value(path));
  return undefined;
};

const SSH_FIELDS: readonly VmsField[] = [
  { key: 'user', pointer: '/ssh/user', example: 'user: arch', form: FORMS.sshUser, read: str },
  {
    key: 'port',
    pointer: '',
    example: 'port: 2222',
    read: (n, c, f) => {
      const p = int(n, c, f);
      if (!p) return undefined;
      const port = p.value as number;
      if (port < 1 || port > 65535) {
        report(n.ctx, pathOf(n, f), `ssh.port of vm ${n.vm} must be between 1 and 65535, not ${port}`);
        return undefined;
      }
      // ov's ssh.port is the host port forwarded to the guest's sshd (:22)
      addPort(n, `${port}:${DEFAULTS.sshPort}`, pathOf(n, f));
      return undefined;
    },
  },
  {
    key: 'port_auto',
    pointer: '',
    read: (n, c, f) => {
      const b = bool(n, c, f);
      if (b?.value === true && n.raw.port !== undefined)
        report(n.ctx, pathOf(n, f), `ssh.port_auto and ssh.port of vm ${n.vm} exclude each other`, 'keep one of them', 'key');
      return undefined;
    },
  },
  { key: 'key_source', pointer: '', read: keySource },
];

function ssh(n: Node): void {
  const s = child(n, 'ssh');
  if (!s) return;
  readMap(s, SSH_FIELDS, {
    key_injection: (v) =>
      isObj(v) && Object.values(v).every((x) => x === 'auto' || x === 'enabled')
        ? undefined
        : 'tend always puts the key in through cloud-init (the seed ISO), never through SMBIOS',
  });
}

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
