/**
 * NoCloud seed contents. user-data is a `#cloud-config` document built from the VM's
 * cloudInit fields — or, when cloudInit.userData names a file, that file's content as is; when
 * the VM also has mounts or the project network, whose bootcmd tend must add, the file becomes
 * the first part of a MIME multipart user-data and tend's bootcmd the second (`withTendBootcmd`).
 * meta-data carries the instance-id (stable for the VM's lifetime) and the host name; the
 * generated cloud-config also keeps /etc/hosts naming it (`manage_etc_hosts: localhost`). A raw
 * user-data file is the user's: tend adds nothing to it but the bootcmd it must have.
 * network-config is not written: with one NIC every supported image configures it by DHCP
 * (cloud-init's fallback), which is what tend wants; it becomes necessary only for static
 * addresses or a second NIC, which the model cannot express yet (docs/images.md).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import type { VmSpec } from '../../schemas/model.js';
import { defaultCloudInit } from '../../schemas/defaults.js';
import { NotFoundError } from '../../schemas/errors.js';
import { imageOs } from '../ssh/user.js';
import type { ProjectNetMember } from '../net/project-net.js';
import { projectNetBootcmd } from './network-config.js';
import { volumeBootcmd } from './volumes.js';

export const SUDO_NOPASSWD = 'ALL=(ALL) NOPASSWD:ALL';

/**
 * No password logins over SSH, as an sshd drop-in cloud-init writes (write_files, init stage)
 * before sshd first starts, instead of `ssh_pwauth: false`: that one makes cloud-init edit
 * sshd_config and restart sshd in its config stage, 10.7 s of a 74 s cloud-init run measured
 * under TCG (`cloud-init analyze blame`, config-set-passwords), time the raw image does not spend.
 * Read where sshd_config includes sshd_config.d (Debian 11+, Ubuntu 20.04+, Fedora, RHEL 9).
 */
export const SSHD_DROP_IN = { path: '/etc/ssh/sshd_config.d/60-tend.conf', content: 'PasswordAuthentication no\n', permissions: '0644' };

export function hostnameOf(vm: VmSpec): string {
  return vm.cloudInit?.hostname ?? vm.name;
}

/** Alpine's cloud images have no bash: the login shell must exist or SSH logins fail. */
function loginShell(vm: VmSpec): string {
  return imageOs(vm) === 'alpine' ? '/bin/sh' : '/bin/bash';
}

export function renderUserData(
  vm: VmSpec,
  opts: { user: string; publicKey: string; net?: ProjectNetMember | null; hostKey?: string | null },
): string {
  const ci = vm.cloudInit ?? defaultCloudInit();
  // mounts (src/seed/volumes.ts) and the project network (src/seed/network-config.ts) first, every boot
  const tendBootcmd = [...volumeBootcmd(vm), ...(opts.net ? [projectNetBootcmd(opts.net)] : [])];
  if (ci.userData) {
    let raw: Buffer;
    try {
      raw = readFileSync(ci.userData);
    } catch (err) {
      throw new NotFoundError('UserDataNotFound', `cannot read the user-data file ${ci.userData}: ${(err as Error).message}`);
    }
    return tendBootcmd.length > 0 ? withTendBootcmd(raw, tendBootcmd) : raw.toString('utf8');
  }
  const keys = [opts.publicKey, ...ci.sshAuthorizedKeys].map((k) => k.trim()).filter((k, i, a) => k && a.indexOf(k) === i);
  const doc: Record<string, unknown> = {
    hostname: hostnameOf(vm),
    preserve_hostname: false,
    // a 127.0.1.1 line for the host name, kept right at every boot, so `sudo` can resolve it (no
    // "unable to resolve host"); `localhost` edits only that line and keeps the rest of /etc/hosts
    manage_etc_hosts: 'localhost',
    // an adopted account (ov's base_user) keeps everything the image gave it: only the keys are added
    users: ci.adoptUser
      ? ['default', { name: opts.user, ssh_authorized_keys: keys }]
      : [
          {
            name: opts.user,
            sudo: SUDO_NOPASSWD,
            shell: loginShell(vm),
            lock_passwd: true,
            ssh_authorized_keys: keys,
          },
        ],
  };
  // the host key tend made (src/ssh/host-key.ts): cloud-init writes it and generates none, which
  // under TCG is 2-10 s of RSA prime search at every first boot (docs/decisions.md). The public
  // half is left to cloud-init (`ssh-keygen -y`): cloud-init 22.4 writes a given one 0600, where
  // every reader of /etc/ssh/*.pub expects 0644
  if (opts.hostKey) doc.ssh_keys = { ed25519_private: opts.hostKey };
  if (ci.timezone) doc.timezone = ci.timezone;
  if (ci.packages.length > 0) {
    doc.package_update = true;
    doc.packages = [...ci.packages];
  }
  doc.write_files = [
    SSHD_DROP_IN,
    ...ci.writeFiles.map((f) => ({
      path: f.path,
      content: f.content,
      ...(f.permissions ? { permissions: f.permissions } : {}),
      ...(f.owner ? { owner: f.owner } : {}),
    })),
  ];
  const bootcmd = [...tendBootcmd, ...ci.bootcmd];
  if (bootcmd.length > 0) doc.bootcmd = bootcmd;
  if (ci.runcmd.length > 0) doc.runcmd = [...ci.runcmd];
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

const BOUNDARY = '==tend-user-data==';

/**
 * The user's own user-data (any format cloud-init reads: cloud-config, a script, ...) plus a
 * cloud-config part with tend's bootcmd, as one MIME multipart document. The user's part is
 * text/plain so cloud-init detects its type from its first line, as it would for the file
 * alone; a file that is MIME itself (its own multipart) is nested as is, with its own headers,
 * and a gzipped file is unpacked first (cloud-init unpacks only the top level). tend's part
 * merges its bootcmd in front of the user's (`list(prepend)`) and keeps every other key of the
 * user's. Parts tend writes are base64, so no content can collide with the boundary.
 */
export function withTendBootcmd(file: Buffer, bootcmd: string[]): string {
  const userData = file[0] === 0x1f && file[1] === 0x8b ? gunzipSync(file) : file;
  const tendPart = `#cloud-config\n${stringify(
    {
      merge_how: [
        { name: 'list', settings: ['prepend'] },
        { name: 'dict', settings: ['no_replace', 'recurse_list'] },
      ],
      bootcmd,
    },
    { lineWidth: 0 },
  )}`;
  const part = (type: string, name: string, body: Buffer): string =>
    [
      `--${BOUNDARY}`,
      `Content-Type: ${type}; charset="utf-8"`,
      'MIME-Version: 1.0',
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${name}"`,
      '',
      (body.toString('base64').match(/.{1,76}/g) ?? []).join('\n'),
    ].join('\n');
  return [
    `Content-Type: multipart/mixed; boundary="${BOUNDARY}"`,
    'MIME-Version: 1.0',
    '',
    /^(content-type|mime-version):/i.test(userData.subarray(0, 64).toString('latin1'))
      ? `--${BOUNDARY}\n${userData.toString('utf8').trimEnd()}`
      : part('text/plain', 'user-data', userData),
    part('text/cloud-config', 'tend-bootcmd.cfg', Buffer.from(tendPart)),
    `--${BOUNDARY}--`,
    '',
  ].join('\n');
}

export function renderMetaData(vm: VmSpec, instanceId: string): string {
  return stringify({ 'instance-id': instanceId, 'local-hostname': hostnameOf(vm) }, { lineWidth: 0 });
}
