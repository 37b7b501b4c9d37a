/**
 * The `cloud_init` and `healthcheck` maps of a tend.yaml service: user, hostname, keys (inline
 * or from a file), packages and commands, write_files, a raw user_data file; the healthcheck's
 * test in compose's forms (string, CMD, CMD-SHELL, NONE) and its timing, as a field table.
 */
import { readFileSync } from 'node:fs';
import type { CloudInitSpec } from '../../schemas/model.js';
import { nameProblem } from '../../schemas/names.js';
import { Draft } from './fields.js';
import { MAX_REFERENCED_BYTES } from './limits.js';
import { context } from './compose-schema.js';
import { durationField, int, isObj, localPath, readFields, report, strings, type ComposeField, type Svc } from './compose-ctx.js';

export function cloudInit(s: Svc): void {
  const { raw, base, ctx } = s;
  const ci = raw.cloud_init;
  const p = [...base, 'cloud_init'];
  if (ci === false) {
    s.draft.set('/cloudInit', null);
    return;
  }
  if (!isObj(ci)) return;
  s.draft.at('/cloudInit', ctx.loc.key(p));
  const out: Partial<CloudInitSpec> = {};
  if (typeof ci.user === 'string') {
    if (/^[a-z_][a-z0-9_-]{0,31}$/.test(ci.user)) out.user = ci.user;
    else
      report(
        ctx,
        [...p, 'user'],
        `cloud_init user "${ci.user}" is not a valid Linux user name`,
        'use lower-case letters, digits, "_" and "-", starting with a letter or "_"',
      );
  }
  if (typeof ci.hostname === 'string') {
    const problem = nameProblem(ci.hostname);
    if (problem) report(ctx, [...p, 'hostname'], `hostname ${problem.replace(/^the name /, '')}`);
    else out.hostname = ci.hostname;
  }
  const keys = strings(ci.ssh_authorized_keys);
  if (keys) {
    out.sshAuthorizedKeys = [];
    keys.forEach((k, i) => {
      if (/^(~|\.{1,2})?\//.test(k)) {
        const abs = localPath(ctx, [...p, 'ssh_authorized_keys', i], k, 'the public key file', 'file', MAX_REFERENCED_BYTES);
        if (abs) out.sshAuthorizedKeys?.push(readFileSync(abs, 'utf8').trim());
      } else if (/^(ssh-|ecdsa-|sk-)/.test(k.trim())) {
        out.sshAuthorizedKeys?.push(k.trim());
      } else {
        report(
          ctx,
          [...p, 'ssh_authorized_keys', i],
          `ssh_authorized_keys item ${i + 1} is neither a public key nor a path to one`,
          'write the key itself ("ssh-ed25519 AAAA...") or a path such as ~/.ssh/id_ed25519.pub',
        );
      }
    });
  }
  for (const k of ['packages', 'runcmd', 'bootcmd'] as const) {
    const v = strings(ci[k]);
    if (v) out[k] = v;
  }
  if (Array.isArray(ci.write_files)) {
    const files: CloudInitSpec['writeFiles'] = [];
    ci.write_files.forEach((f, i) => {
      if (!isObj(f) || typeof f.path !== 'string') return;
      const fp = [...p, 'write_files', i];
      s.draft.at(`/cloudInit/writeFiles/${i}`, ctx.loc.value(fp));
      if (!f.path.startsWith('/'))
        report(
          ctx,
          [...fp, 'path'],
          `write_files path "${f.path}" is not an absolute path in the guest`,
          `write /${f.path.replace(/^\.?\/*/, '')}`,
        );
      if (typeof f.permissions === 'string' && !/^0?[0-7]{3,4}$/.test(f.permissions)) {
        report(ctx, [...fp, 'permissions'], `permissions "${f.permissions}" is not an octal mode`, 'write e.g. "0644" (quoted)');
      }
      files.push({
        path: f.path,
        content: typeof f.content === 'string' ? f.content : '',
        permissions: typeof f.permissions === 'string' ? f.permissions : null,
        owner: typeof f.owner === 'string' ? f.owner : null,
      });
    });
    out.writeFiles = files;
  }
  if (typeof ci.user_data === 'string') {
    const others = Object.keys(ci).filter((k) => k !== 'user_data' && k !== 'hostname');
    if (others.length) {
      report(
        ctx,
        [...p, 'user_data'],
        `user_data is used as is, so ${others.map((k) => `\`${k}\``).join(', ')} in the same cloud_init would be ignored`,
        'put everything in the user-data file, or drop user_data and use the keys',
      );
    }
    const abs = localPath(ctx, [...p, 'user_data'], ci.user_data, 'the user-data file', 'file', MAX_REFERENCED_BYTES);
    if (abs) {
      out.userData = abs;
      s.draft.at('/cloudInit/userData', ctx.loc.value([...p, 'user_data']));
    }
  }
  s.draft.set('/cloudInit', out);
}

/** The healthcheck's test as an argv; null: explicitly none; undefined: none usable (reported). */
function testOf(s: Svc, hc: Record<string, unknown>): string[] | null | undefined {
  const p = [...s.base, 'healthcheck'];
  const t = hc.test;
  if (typeof t === 'string') {
    if (t.trim() !== '') return ['sh', '-c', t];
    report(s.ctx, [...p, 'test'], 'healthcheck test is empty');
  } else if (Array.isArray(t) && t.every((x) => typeof x === 'string') && t.length > 0) {
    const [head, ...rest] = t as string[];
    if (head === 'NONE') return null;
    if (head === 'CMD') {
      if (rest.length > 0) return rest;
      report(s.ctx, [...p, 'test'], 'healthcheck test ["CMD"] has no command', 'write ["CMD", "curl", "-f", "http://localhost"]');
    } else if (head === 'CMD-SHELL') {
      if (rest.length === 1) return ['sh', '-c', rest[0]];
      report(
        s.ctx,
        [...p, 'test'],
        'healthcheck test ["CMD-SHELL", ...] takes exactly one shell command',
        'write ["CMD-SHELL", "curl -f http://localhost || exit 1"]',
      );
    } else return t as string[];
  } else if (t === undefined) {
    report(
      s.ctx,
      p,
      `the healthcheck of ${context(s.base)} has no \`test\``,
      'add e.g. test: ["CMD", "curl", "-f", "http://localhost"]',
      'key',
    );
  }
  return undefined;
}

const HEALTHCHECK_FIELDS: readonly ComposeField[] = [
  { key: 'healthcheck.interval', pointer: '/healthcheck/interval', unit: 's', read: durationField },
  { key: 'healthcheck.timeout', pointer: '/healthcheck/timeout', unit: 's', read: durationField },
  { key: 'healthcheck.start_period', pointer: '/healthcheck/startPeriod', unit: 's', read: durationField },
  { key: 'healthcheck.retries', pointer: '/healthcheck/retries', read: int },
];

export function healthcheck(s: Svc): void {
  const hc = s.raw.healthcheck;
  if (!isObj(hc)) return;
  const loc = s.ctx.loc.key([...s.base, 'healthcheck']);
  if (hc.disable === true) return s.draft.set('/healthcheck', null, loc);
  const test = testOf(s, hc);
  if (test === null) return s.draft.set('/healthcheck', null, loc);
  const sub = { ...s, draft: new Draft() };
  sub.draft.set('/healthcheck', test ? { test } : {});
  readFields(sub, HEALTHCHECK_FIELDS);
  if (test) s.draft.adopt('/healthcheck', sub.draft, loc);
}
