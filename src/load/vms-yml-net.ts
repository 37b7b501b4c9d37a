/**
 * vms.yml's network and ssh maps: network mode, port forwards, and ssh (user, the HOST port ov
 * forwards to the guest's sshd, key_source). Part of the entity's field table (vms-yml-fields.ts).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../../schemas/defaults.js';
import { resolvePath } from './common.js';
import { parsePortSpec } from './ports.js';
import { FORMS } from './fields.js';
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
  valueOf,
  warn,
  type Node,
  type VmsContext,
  type VmsField,
} from './vms-yml-ctx.js';

/** network: mode user | bridge (a host bridge: tend's tap on that bridge) | nat (libvirt's own network: not supported). */
export function network(n: Node): void {
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

export function ssh(n: Node): void {
  const s = child(n, 'ssh');
  if (!s) return;
  readMap(s, SSH_FIELDS, {
    key_injection: (v) =>
      isObj(v) && Object.values(v).every((x) => x === 'auto' || x === 'enabled')
        ? undefined
        : 'tend always puts the key in through cloud-init (the seed ISO), never through SMBIOS',
  });
}
