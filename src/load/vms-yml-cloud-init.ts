/**
 * `cloud_init` of a vms.yml entity: packages, runcmd, bootcmd, write_files, hostname, timezone and
 * network_config go into the canonical cloud-init; `ov_install` (ov installing itself in the
 * guest) is not tend's business and says so unless it is off.
 */
import { nameProblem } from '../../schemas/names.js';
import { isObj, named, readMap, report, show, strList, type Node, type VmsField } from './vms-yml-ctx.js';

function merge(n: Node, patch: Record<string, unknown>): void {
  const ci = (n.draft.get('/cloudInit') as Record<string, unknown> | undefined) ?? {};
  n.draft.set('/cloudInit', { ...ci, ...patch });
}

const list =
  (key: 'packages' | 'runcmd' | 'bootcmd'): VmsField['read'] =>
  (n, c, f) => {
    const v = n.raw[f.key];
    // ov (like cloud-init) takes a runcmd item as a string or an argv list
    if (
      key !== 'packages' &&
      Array.isArray(v) &&
      v.every((x) => typeof x === 'string' || (Array.isArray(x) && x.every((y) => typeof y === 'string')))
    ) {
      merge(n, { [key]: v.map((x) => (Array.isArray(x) ? x.map((a) => `'${String(a).replace(/'/g, `'\\''`)}'`).join(' ') : x)) });
      n.draft.at(`/cloudInit/${key}`, n.ctx.loc.value([...n.path, f.key]));
      return undefined;
    }
    const l = strList(n, c, f);
    if (l) {
      merge(n, { [key]: l.value });
      n.draft.at(`/cloudInit/${key}`, l.loc);
    }
    return undefined;
  };

function writeFiles(n: Node): void {
  const v = n.raw.write_files;
  const p = [...n.path, 'write_files'];
  if (!Array.isArray(v)) {
    report(n.ctx, p, `write_files of vm ${n.vm} must be a list of {path, content}, not ${show(v)}`);
    return;
  }
  const files: Record<string, unknown>[] = [];
  v.forEach((f, i) => {
    const fp = [...p, i];
    if (!isObj(f) || typeof f.path !== 'string') {
      report(n.ctx, fp, `item ${i + 1} of write_files of vm ${n.vm} needs a path`, 'write - {path: /etc/motd, content: "hello"}');
      return;
    }
    for (const k of Object.keys(f))
      if (!['path', 'content', 'permissions', 'owner'].includes(k))
        report(
          n.ctx,
          [...fp, k],
          `unknown key \`${k}\` in item ${i + 1} of write_files of vm ${n.vm}`,
          'known keys: path, content, permissions, owner',
          'key',
        );
    if (!f.path.startsWith('/')) {
      report(
        n.ctx,
        [...fp, 'path'],
        `write_files path "${f.path}" is not an absolute path in the guest`,
        `write /${f.path.replace(/^\.?\/*/, '')}`,
      );
      return;
    }
    if (f.permissions !== undefined && (typeof f.permissions !== 'string' || !/^0?[0-7]{3,4}$/.test(f.permissions))) {
      report(n.ctx, [...fp, 'permissions'], `permissions ${show(f.permissions)} is not an octal mode`, 'write e.g. "0644" (quoted)');
      return;
    }
    n.draft.at(`/cloudInit/writeFiles/${files.length}`, n.ctx.loc.value(fp));
    files.push({
      path: f.path,
      content: typeof f.content === 'string' ? f.content : '',
      permissions: typeof f.permissions === 'string' ? f.permissions : null,
      owner: typeof f.owner === 'string' ? f.owner : null,
    });
  });
  merge(n, { writeFiles: files });
}

const CLOUD_INIT_FIELDS: readonly VmsField[] = [
  {
    key: 'users',
    pointer: '',
    read: (n, _c, f) => {
      report(
        n.ctx,
        [...n.path, f.key],
        `cloud_init.users of vm ${n.vm} is not supported: tend gives the VM one login user`,
        "write ssh.user (a new account with passwordless sudo) or base_user (adopt the image's own account)",
        'key',
      );
      return undefined;
    },
  },
  { key: 'packages', pointer: '', read: list('packages') },
  { key: 'runcmd', pointer: '', read: list('runcmd') },
  { key: 'bootcmd', pointer: '', read: list('bootcmd') },
  {
    key: 'write_files',
    pointer: '',
    read: (n) => {
      writeFiles(n);
      return undefined;
    },
  },
  {
    key: 'hostname',
    pointer: '',
    read: (n, _c, f) => {
      const v = n.raw[f.key];
      const problem = typeof v === 'string' ? nameProblem(v) : 'it must be a string';
      if (problem) report(n.ctx, [...n.path, f.key], `hostname of vm ${n.vm}: ${problem.replace(/^the name /, '')}`);
      else merge(n, { hostname: v });
      return undefined;
    },
  },
  {
    key: 'timezone',
    pointer: '',
    read: (n, _c, f) => {
      const v = n.raw[f.key];
      if (typeof v === 'string' && /^[A-Za-z0-9_+\-/]+$/.test(v)) merge(n, { timezone: v });
      else report(n.ctx, [...n.path, f.key], `timezone of vm ${n.vm} must be a zone name like UTC or Europe/Berlin, not ${show(v)}`);
      return undefined;
    },
  },
  {
    key: 'network_config',
    pointer: '',
    read: (n, _c, f) => {
      const v = n.raw[f.key];
      const p = [...n.path, f.key];
      if (!isObj(v)) report(n.ctx, p, `network_config of vm ${n.vm} must be a network-config document (a map), not ${show(v)}`);
      else if (v.version !== 1 && v.version !== 2)
        report(n.ctx, p, `network_config of vm ${n.vm} has no version 1 or 2`, 'cloud-init network-config starts with version: 2', 'key');
      else {
        merge(n, { networkConfig: v });
        n.draft.at('/cloudInit/networkConfig', n.ctx.loc.value(p));
      }
      return undefined;
    },
  },
];

export function cloudInit(n: Node): void {
  const v = n.raw.cloud_init;
  const p = [...n.path, 'cloud_init'];
  if (v === false) {
    n.draft.set('/cloudInit', null, n.ctx.loc.value(p));
    return;
  }
  if (!isObj(v)) {
    report(n.ctx, p, `${named(n, 'cloud_init')} must be a map of keys, not ${show(v)}`);
    return;
  }
  n.draft.at('/cloudInit', n.ctx.loc.key(p));
  if (n.draft.get('/cloudInit') === undefined) n.draft.set('/cloudInit', {});
  readMap({ ...n, raw: v, path: p }, CLOUD_INIT_FIELDS, {
    ov_install: (x) =>
      isObj(x) && (x.strategy === 'none' || x.strategy === 'skip')
        ? undefined
        : 'tend does not install ov inside the guest (strategy: none says so)',
  });
}
