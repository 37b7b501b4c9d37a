/**
 * `tend cp SRC DEST`: copy files and folders between the host and a VM over SFTP (docker cp,
 * kubectl cp, limactl copy). One side is `NAME:PATH` (a path relative to the login user's home;
 * `NAME:` is that home), the other a host path. The VM's key, login user (or -u) and pinned host
 * key are used as by `tend exec`; the copy rules are src/ssh/sftp-copy.ts's.
 */
import { resolve } from 'node:path';
import { EXIT, TendError, UsageError } from '../../../schemas/errors.js';
import { NAME_PATTERN } from '../../../schemas/names.js';
import type { CliCommand } from '../command.js';
import { backendFor, loadContext, vmSpec, type GlobalOptions } from '../context.js';

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
  vm: string;
  direction: 'to-vm' | 'from-vm';
  /** where SRC landed ("web:/srv/site" or a host path) */
  target: string;
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  skipped: string[];
}

export async function cpCommand(o: CpCommandOptions): Promise<CpResult> {
  const from = guestPath(o.src);
  const to = guestPath(o.dest);
  if (from && to)
    throw new UsageError('tend cp copies between the host and one VM: copy from one VM to the host, then to the other', 'BadUsage');
  if (!from && !to) throw new UsageError(`one side of tend cp is a VM path (NAME:PATH): \`tend cp ${o.src} web:${o.dest}\``, 'BadUsage');
  const remote = (from ?? to) as { vm: string; path: string };
  const cwd = o.cwd ?? process.cwd();
  const ctx = await loadContext(o, remote.vm);
  const spec = vmSpec(ctx.project, remote.vm);
  const backend = await backendFor(ctx);
  const obs = (await backend.observe(ctx.project, o.signal)).vms[remote.vm];
  if (!obs || obs.power !== 'running' || (!obs.sshPort && spec.network.mode !== 'tap'))
    throw new UsageError(`${remote.vm} is not running: \`tend start ${remote.vm}\` first`, 'VmNotRunning');
  const { sshTarget, connectGuest } = await import('../../ssh/guest.js');
  const { openSftp, upload, download } = await import('../../ssh/sftp-copy.js');
  const base = await sshTarget(ctx.stateRoot, ctx.project, spec, ctx.env);
  const target = { ...base, ...(o.user ? { user: o.user } : {}) };
  let client;
  try {
    client = await connectGuest(ctx.stateRoot, ctx.project, spec, { signal: o.signal, env: ctx.env, target, pinNew: false });
  } catch (err) {
    if (err instanceof TendError && ['SshConnectFailed', 'SshTimeout'].includes(err.reason))
      throw new TendError(
        err.reason,
        `${err.message}: is it still booting? \`tend logs ${remote.vm} --console\` shows its boot`,
        err.exitCode,
        { cause: err },
      );
    throw err;
  }
  try {
    const sftp = await openSftp(client, `${remote.vm} (${target.host}:${target.port})`);
    const r = from
      ? await download(sftp, remote.vm, remote.path, hostPath(cwd, o.dest))
      : await upload(sftp, remote.vm, hostPath(cwd, o.src), remote.path);
    return { vm: remote.vm, direction: from ? 'from-vm' : 'to-vm', ...r, target: from ? r.target : `${remote.vm}:${r.target}` };
  } finally {
    client.on('error', () => {});
    client.end();
  }
}

const size = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

export const command: CliCommand = {
  name: 'cp',
  description: 'copy files and folders between the host and a VM over SFTP: tend cp SRC NAME:DEST, tend cp NAME:SRC DEST',
  examples: [
    'tend cp ./site web:/srv/         # the folder lands in /srv/site',
    'tend cp ./site/. web:/srv/www    # its content into /srv/www',
    'tend cp web:/var/log/syslog .',
    'tend cp -u deploy ./app web:/srv/   # as a user whose authorized_keys hold the VM key',
  ],
  configure: (c) =>
    c
      .argument('<src>', "a host path, or NAME:PATH in the VM (relative to the login user's home)")
      .argument('<dest>', 'a host path, or NAME:PATH in the VM')
      .option('-u, --user <user>', "log in as this user (default: the VM's login user); files belong to that user"),
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
