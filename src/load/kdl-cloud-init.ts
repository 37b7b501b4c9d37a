/**
 * The `cloud-init { ... }` and `ssh { ... }` blocks of a VMFile.kdl vm, as field tables
 * (fields.ts): hostname, user, ssh-key (a public key or a file holding one), user-data,
 * packages and commands, write-file; the SSH user, private key and port.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { WriteFile } from '../../schemas/model.js';
import { FORMS, type Located } from './fields.js';
import { MAX_REFERENCED_BYTES } from './limits.js';
import type { KNode } from './kdl-parse.js';
import { quote } from './kdl-read.js';
import { existingPath, file, int, list, readBlock, str, suggestName, type KdlField, type VmCtx } from './kdl-fields.js';

const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/;

function hostname(n: KNode, c: VmCtx): Located<string> | undefined {
  const v = c.r.string(n);
  if (!v || HOSTNAME_RE.test(v.value)) return v;
  c.r.error(
    v.loc,
    `hostname "${v.value}" is not a valid host name`,
    `use letters, digits, "-" and ".", e.g. hostname "${suggestName(v.value)}"`,
  );
  return undefined;
}

/** ssh-key: a path to a public key file (its content is used), or the key itself. */
function publicKey(c: VmCtx, v: Located<string>): string | undefined {
  if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-|sk-)\S* \S+/.test(v.value)) return v.value.trim();
  const abs = existingPath(c, v, 'the ssh-key file', 'file', MAX_REFERENCED_BYTES);
  if (!abs) return undefined;
  let text: string;
  try {
    text = readFileSync(abs, 'utf8').trim();
  } catch (err) {
    c.r.error(v.loc, `the ssh-key file "${v.value}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
  if (text.includes('PRIVATE KEY')) {
    c.r.error(
      v.loc,
      `ssh-key "${v.value}" is a private key: cloud-init needs the public key`,
      existsSync(`${abs}.pub`) ? `write ssh-key "${v.value}.pub"` : 'give the .pub file',
    );
    return undefined;
  }
  if (text === '') {
    c.r.error(v.loc, `the ssh-key file "${v.value}" is empty`);
    return undefined;
  }
  return text;
}

function sshKeys(n: KNode, c: VmCtx, f: KdlField): undefined {
  for (const v of c.r.strings(n)) {
    const key = publicKey(c, v);
    if (key !== undefined) c.draft.push(f.pointer, key, v.loc);
  }
  return undefined;
}

/** write-file "/guest/path" { content "..."; permissions "0644"; owner "root:root" } */
function writeFile(n: KNode, c: VmCtx, f: KdlField): undefined {
  const path = c.r.string(n, true);
  if (!path) return undefined;
  if (!path.value.startsWith('/')) {
    c.r.error(
      path.loc,
      `write-file "${path.value}" is not an absolute path in the guest`,
      `write write-file "/${path.value.replace(/^\.?\/*/, '')}" { content "..." }`,
    );
    return undefined;
  }
  const kids = c.r.block(n);
  if (!kids) return undefined;
  let content: string | undefined;
  let permissions: string | null = null;
  let owner: string | null = null;
  for (const k of c.r.children('write-file', kids, ['content', 'permissions', 'owner'])) {
    if (k.name === 'content') {
      if (!c.r.noBlock(k)) continue;
      const v = c.r.one(k);
      if (v && typeof v.value === 'string') content = v.value;
      else if (v) c.r.error(v.loc, `content must be a string, not ${quote(v.value)}`, 'write content "..."');
      continue;
    }
    const v = c.r.string(k);
    if (!v) continue;
    if (k.name === 'permissions') {
      if (!/^0?[0-7]{3,4}$/.test(v.value)) c.r.error(v.loc, `permissions "${v.value}" is not an octal mode`, 'write permissions "0644"');
      else permissions = v.value;
    } else owner = v.value;
  }
  if (content === undefined) {
    if (!kids.some((k) => k.name === 'content'))
      c.r.error(n.loc, `write-file "${path.value}" has no content`, 'add content "..." inside its block');
    return undefined;
  }
  const wf: WriteFile = { path: path.value, content, permissions, owner };
  c.draft.push(f.pointer, wf, n.args[0]?.loc ?? n.loc);
  return undefined;
}

const CLOUD_INIT_FIELDS: readonly KdlField[] = [
  { key: 'hostname', pointer: '/cloudInit/hostname', read: hostname },
  { key: 'ssh-key', pointer: '/cloudInit/sshAuthorizedKeys', repeatable: true, read: sshKeys },
  { key: 'user-data', pointer: '/cloudInit/userData', read: file('the user-data file', MAX_REFERENCED_BYTES) },
  { key: 'user', pointer: '/cloudInit/user', read: str, form: FORMS.linuxUser },
  { key: 'package', pointer: '/cloudInit/packages', repeatable: true, read: list },
  { key: 'runcmd', pointer: '/cloudInit/runcmd', repeatable: true, read: list },
  { key: 'bootcmd', pointer: '/cloudInit/bootcmd', repeatable: true, read: list },
  { key: 'write-file', pointer: '/cloudInit/writeFiles', repeatable: true, read: writeFile },
];

/** `cloud-init { ... }`, or `cloud-init #false` to turn it off. */
function cloudInit(n: KNode, c: VmCtx): undefined {
  if (n.children === null && n.args.length === 1 && typeof n.args[0].value === 'boolean') {
    if (!n.args[0].value) c.draft.set('/cloudInit', null);
    c.draft.at('/cloudInit', n.args[0].loc);
    return undefined;
  }
  if (n.args.length > 0) {
    c.r.error(
      n.args[0].loc,
      'cloud-init takes a block { ... } (or #false to turn it off), not a value',
      'write cloud-init { hostname "web" }',
    );
    return undefined;
  }
  const kids = c.r.block(n);
  if (!kids) return undefined;
  c.r.noProps(n);
  const userData = kids.find((k) => k.name === 'user-data');
  const others = [...new Set(kids.filter((k) => k.name !== 'user-data' && k.name !== 'hostname').map((k) => k.name))];
  if (userData && others.length > 0) {
    // the same rule as tend.yaml's cloud_init.user_data (vmctl drops ssh-key silently here)
    c.r.error(
      userData.loc,
      `user-data is used as is, so ${others.map((k) => `\`${k}\``).join(', ')} in the same cloud-init would be ignored`,
      'put everything in the user-data file, or drop user-data and use the nodes',
    );
    return undefined;
  }
  c.draft.set('/cloudInit', {}, n.loc);
  readBlock(c, 'cloud-init', kids, CLOUD_INIT_FIELDS);
  return undefined;
}

const SSH_FIELDS: readonly KdlField[] = [
  { key: 'user', pointer: '/ssh/user', read: str, form: FORMS.sshUser },
  { key: 'private-key', pointer: '/ssh/privateKey', read: file('the private-key file') },
  { key: 'port', pointer: '/ssh/port', read: int() },
];

function ssh(n: KNode, c: VmCtx): undefined {
  const kids = c.r.block(n);
  if (!kids) return undefined;
  c.r.noProps(n);
  c.draft.set('/ssh', {}, n.loc);
  readBlock(c, 'ssh', kids, SSH_FIELDS);
  return undefined;
}

export const CLOUD_INIT_FIELD: KdlField = { key: 'cloud-init', pointer: '', read: cloudInit };
export const SSH_FIELD: KdlField = { key: 'ssh', pointer: '', read: ssh };
