/**
 * `tend cp SRC DEST`: copy files and folders between the host and a VM, or between two VMs, over
 * SFTP (docker cp, kubectl cp, limactl copy). A VM side is `NAME:PATH` (a path relative to the
 * login user's home; `NAME:` is that home), a host side a path. Between two VMs the data streams
 * through the host (an SFTP session on each). The VM's key, login user (or -u, on both VMs) and
 * pinned host key are used as by `tend exec` (src/cli/guest-connection.ts); the copy rules are
 * src/ssh/sftp-copy.ts's.
 */
import { resolve } from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { NAME_PATTERN } from '../../../schemas/names.js';
import type { CliCommand } from '../command.js';
import { backendFor, loadContext, vmSpec, type Context, type GlobalOptions } from '../context.js';
import { closeConnection, connectForCommand } from '../guest-connection.js';

/** "web:/etc/hosts" → { vm, path }; a host path → null. `./a:b` is a host path. */
export function guestPath(arg: string): { vm: string; path: string } | null {
  const m = new RegExp(`^(${NAME_PATTERN.slice(1, -1)}):(.*)$`, 's').exec(arg);
  if (!m) return null;
  return { vm: m[1] as string, path: m[m.length - 1] === '' ? '.' : (m[m.length - 1] as string) };
}

/** A host path made absolute, keeping what resolve() drops: a trailing "/." (the content) or "/" (a folder). */
function hostPath(cwd: string, p: string): string {
  const abs = resolve(cwd, p);
  if (p === '.' || p.endsWith('/.')) return abs === '/' ? '/.' : `${abs}/.`;
  return p.endsWith('/') && abs !== '/' ? `${abs}/` : abs;
}

export interface CpCommandOptions extends GlobalOptions {
  src: string;
  dest: string;
  /** log in as this user instead of the VM's */
  user?: string;
}

export interface CpResult {
  /** the VM copied to or from (between two VMs: the source) */
  vm: string;
  direction: 'to-vm' | 'from-vm' | 'vm-to-vm';
  /** between two VMs: the VM copied to */
  toVm?: string;
  /** where SRC landed ("web:/srv/site" or a host path) */
  target: string;
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  skipped: string[];
}

/** An SFTP session on a running VM, opened as `tend exec` opens its connection. */
async function openVm(ctx: Context, vm: string, o: CpCommandOptions): Promise<{ sftp: SFTPWrapper; client: Client }> {
  const spec = vmSpec(ctx.project, vm);
  const backend = await backendFor(ctx);
  const obs = (await backend.observe(ctx.project, o.signal)).vms[vm];
  if (!obs || obs.power !== 'running' || (!obs.sshPort && spec.network.mode !== 'tap'))
    throw new UsageError(`${vm} is not running: \`tend start ${vm}\` first`, 'VmNotRunning');
  const { client, target } = await connectForCommand(ctx, spec, {
    user: o.user,
    signal: o.signal,
    unreachable: `is it still booting? \`tend logs ${vm} --console\` shows its boot`,
  });
  try {
    const { openSftp } = await import('../../ssh/sftp-copy.js');
    return { client, sftp: await openSftp(client, `${vm} (${target.host}:${target.port})`) };
  } catch (err) {
    closeConnection(client);
    throw err;
  }
}

export async function cpCommand(o: CpCommandOptions): Promise<CpResult> {
  const from = guestPath(o.src);
  const to = guestPath(o.dest);
  if (!from && !to) throw new UsageError(`one side of tend cp is a VM path (NAME:PATH): \`tend cp ${o.src} web:${o.dest}\``, 'BadUsage');
  const cwd = o.cwd ?? process.cwd();
  const ctx = await loadContext(o, [...new Set([from?.vm, to?.vm].filter((v): v is string => v !== undefined))]);
  const { upload, download, transfer } = await import('../../ssh/sftp-copy.js');
  const opened: Client[] = [];
  const open = async (vm: string): Promise<SFTPWrapper> => {
    const c = await openVm(ctx, vm, o);
    opened.push(c.client);
    return c.sftp;
  };
  try {
    if (from && to) {
      // between two VMs (or within one): streamed through the host over two SFTP sessions
      const src = await open(from.vm);
      const dst = await open(to.vm);
      const r = await transfer(src, from.vm, from.path, dst, to.vm, to.path);
      return { vm: from.vm, direction: 'vm-to-vm', toVm: to.vm, ...r, target: `${to.vm}:${r.target}` };
    }
    if (from) {
      const r = await download(await open(from.vm), from.vm, from.path, hostPath(cwd, o.dest));
      return { vm: from.vm, direction: 'from-vm', ...r };
    }
    const remote = to as { vm: string; path: string };
    const r = await upload(await open(remote.vm), remote.vm, hostPath(cwd, o.src), remote.path);
    return { vm: remote.vm, direction: 'to-vm', ...r, target: `${remote.vm}:${r.target}` };
  } finally {
    for (const c of opened) closeConnection(c);
  }
}

const size = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

export const command: CliCommand = {
  name: 'cp',
  description: 'copy files and folders between the host and a VM, or two VMs, over SFTP: tend cp SRC NAME:DEST, tend cp NAME:SRC DEST',
  examples: [
    'tend cp ./site web:/srv/         # the folder lands in /srv/site',
    'tend cp ./site/. web:/srv/www    # its content into /srv/www',
    'tend cp web:/var/log/syslog .',
    'tend cp web:/srv/site db:/srv/    # between two VMs, streamed through the host',
    'tend cp -u deploy ./app web:/srv/   # as a user whose authorized_keys hold the VM key',
  ],
  configure: (c) =>
    c
      .argument('<src>', "a host path, or NAME:PATH in the VM (relative to the login user's home)")
      .argument('<dest>', 'a host path, or NAME:PATH in the VM (a VM on both sides: copied between them)')
      .option('-u, --user <user>', "log in as this user (default: the VM's login user; on both VMs); files belong to that user"),
  async run({ g, args, opts, io }) {
    const o = opts as { user?: string };
    const r = await cpCommand({ ...g, src: args[0] as string, dest: args[1] as string, ...(o.user ? { user: o.user } : {}) });
    if (g.json) io.json(r);
    else {
      const what = [`${r.files} file${r.files === 1 ? '' : 's'}`, ...(r.links ? [`${r.links} link${r.links === 1 ? '' : 's'}`] : [])];
      io.out(`copied ${what.join(', ')} (${size(r.bytes)}) to ${r.target}`);
      for (const s of r.skipped) io.err(`tend: left out ${s}: not a file, folder or link`);
    }
    return EXIT.ok;
  },
};
