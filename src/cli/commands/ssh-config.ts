/**
 * `tend ssh-config [NAME...] [--append FILE]`: an OpenSSH config block per VM (like `vagrant
 * ssh-config`, `limactl show-ssh`), so ssh, scp, rsync, Ansible and VS Code Remote-SSH reach the
 * VMs with tend's key and the VM's pinned host key (src/ssh/config-file.ts). `--append FILE`
 * writes the project's blocks into a marked section of FILE (replaced on every run, the rest of
 * the file kept), for an `Include FILE` line in ~/.ssh/config.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EXIT, TendError } from '../../../schemas/errors.js';
import { hostAlias, readPin } from '../../ssh/known-hosts.js';
import { mergeSection, renderSshConfig, type SshHostEntry } from '../../ssh/config-file.js';
import { resolveSshKeys, resolveSshUser } from '../../ssh/resolve.js';
import { writeFileAtomic } from '../../state/atomic.js';
import { readInstanceId } from '../../state/instance-id.js';
import { vmDir, vmFile } from '../../state/paths.js';
import type { CliCommand } from '../command.js';
import { loadContext, vmSpec, type GlobalOptions } from '../context.js';

export interface SshConfigOptions extends GlobalOptions {
  names?: string[];
  /** write the blocks into this include file (a section per project) */
  append?: string;
}

export interface SshConfigResult {
  project: string;
  hosts: SshHostEntry[];
  /** VMs without a block, and why (no SSH port recorded yet, TAP address unknown) */
  skipped: { vm: string; why: string }[];
  /** the config text */
  text: string;
  /** with --append: the file, whether it changed, and whether ~/.ssh/config includes it */
  file?: { path: string; changed: boolean; included: boolean };
}

/** Does ~/.ssh/config have an `Include` naming `path` (as written, or with ~)? */
async function includedBy(home: string, path: string): Promise<boolean> {
  const text = await readFile(join(home, '.ssh', 'config'), 'utf8').catch(() => '');
  const short = path.startsWith(home + '/') ? '~' + path.slice(home.length) : path;
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .some((w) => w[0]?.toLowerCase() === 'include' && w.slice(1).some((x) => x.replace(/^"|"$/g, '') === path || x === short));
}

export async function sshConfigCommand(o: SshConfigOptions): Promise<SshConfigResult> {
  const names = o.names ?? [];
  const ctx = await loadContext({ ...o, fromState: true }, names.length > 0 ? names : undefined);
  const vms = names.length > 0 ? names.map((n) => vmSpec(ctx.project, n)) : ctx.project.vms;
  const home = ctx.env.HOME ?? homedir();
  const { sshTarget } = await import('../../ssh/guest.js');
  const hosts: SshHostEntry[] = [];
  const skipped: { vm: string; why: string }[] = [];
  for (const spec of vms) {
    let target;
    try {
      target = await sshTarget(ctx.stateRoot, ctx.project, spec, ctx.env);
    } catch (err) {
      if (!(err instanceof TendError)) throw err;
      skipped.push({
        vm: spec.name,
        why: err.reason === 'NoSshPort' ? `no SSH port recorded yet: \`tend up\` first` : err.message.split('. ')[0],
      });
      continue;
    }
    const knownHostsFile = vmFile(ctx.projDir, spec.name, 'knownHosts');
    const pin = await readPin(knownHostsFile);
    const valid = pin && pin.instanceId === (await readInstanceId(ctx.projDir, spec.name)) ? pin : null;
    const alias = valid?.alias || hostAlias(ctx.project.name, spec.name);
    const keys = resolveSshKeys({ vmDir: vmDir(ctx.projDir, spec.name), fileKey: spec.ssh.privateKey, home })
      .filter((k) => k.source !== 'home')
      .map((k) => k.path);
    hosts.push({
      vm: spec.name,
      host: hostAlias(ctx.project.name, spec.name),
      hostName: target.host,
      port: target.port,
      user: resolveSshUser(spec),
      identityFiles: keys.length > 0 ? keys : [target.privateKey],
      knownHostsFile,
      hostKeyAlias: alias,
      hostKeyTypes: valid ? [...new Set(valid.keys.map((k) => k.split(' ')[0] as string))] : [],
      pinned: valid !== null,
    });
  }
  const text = renderSshConfig(ctx.project.name, hosts, skipped);
  const result: SshConfigResult = { project: ctx.project.name, hosts, skipped, text };
  if (o.append) {
    const path = resolve(o.cwd ?? process.cwd(), o.append === '~' || o.append.startsWith('~/') ? home + o.append.slice(1) : o.append);
    let existing = '';
    try {
      existing = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new TendError('CannotWrite', `cannot read ${path}: ${(err as Error).message}`, EXIT.failure, { cause: err });
    }
    const next = mergeSection(existing, ctx.project.name, text);
    const changed = next !== existing;
    if (changed) {
      try {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await writeFileAtomic(path, next);
      } catch (err) {
        throw new TendError('CannotWrite', `cannot write ${path}: ${(err as Error).message}`, EXIT.failure, { cause: err });
      }
    }
    result.file = { path, changed, included: await includedBy(home, path) };
  }
  return result;
}

export const command: CliCommand = {
  name: 'ssh-config',
  description: 'print an OpenSSH config block per VM (ssh, scp, rsync, VS Code reach it by alias); --append FILE keeps an include file',
  examples: [
    'tend ssh-config >> ~/.ssh/config',
    'tend ssh-config --append ~/.ssh/tend.conf   # then once: Include ~/.ssh/tend.conf in ~/.ssh/config',
    'ssh -F <(tend ssh-config web) tend-demo-web',
  ],
  configure: (c) =>
    c
      .argument('[names...]', 'VMs (default: every VM of the project)')
      .option('--append <file>', "write the project's blocks into FILE (its own section, replaced on every run)"),
  async run({ g, args, opts, io }) {
    const o = opts as { append?: string };
    const names = args[0] as string[];
    const r = await sshConfigCommand({ ...g, ...(names.length > 0 ? { names } : {}), ...(o.append ? { append: o.append } : {}) });
    if (g.json) {
      const { text: _text, ...rest } = r;
      io.json(rest);
    } else if (r.file) {
      io.out(
        `${r.file.path}: ${r.hosts.length} host${r.hosts.length === 1 ? '' : 's'} of project ${r.project} ${r.file.changed ? 'written' : 'unchanged'}`,
      );
      for (const s of r.skipped) io.err(`tend: ${s.vm} left out: ${s.why}`);
      if (!r.file.included) io.err(`tend: ~/.ssh/config does not include it yet: add \`Include ${r.file.path}\` at its top`);
    } else {
      io.out(r.text);
    }
    return EXIT.ok;
  },
};
