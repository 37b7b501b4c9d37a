/**
 * `tend ssh [NAME] [-- CMD...]`: hands off to the system `ssh` for a real terminal (job
 * control, window size, agent forwarding all work as usual). The VM is inferred when the
 * project has only one. User and keys follow docs/ssh.md (src/ssh/resolve.ts); the host key is
 * checked against the VM's pin (src/ssh/known-hosts.ts) when there is one for its current disk.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import type { Project } from '../../../schemas/model.js';
import { BackendError, UsageError } from '../../../schemas/errors.js';
import { didYouMean } from '../../../schemas/names.js';
import { hostAlias, readPin } from '../../ssh/known-hosts.js';
import { requireSshKeys, resolveSshUser } from '../../ssh/resolve.js';
import { jumpProxyCommand } from '../../ssh/jump.js';
import { vmDir, vmFile } from '../../state/paths.js';
import { backendFor, inferVm, loadContext, vmSpec, type GlobalOptions } from '../context.js';
import type { CliCommand } from '../command.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, vmName, withInstance } from '../name-flag.js';

export interface SshCommandOptions extends GlobalOptions {
  name?: string;
  /** command and arguments to run instead of a login shell */
  argv?: string[];
  user?: string;
  key?: string;
  /** ask ssh for a terminal (-t) even when it would not allocate one */
  tty?: boolean;
  /** runs the ssh client (tests inject one); default: spawn `ssh` on this terminal */
  run?: (argv: string[]) => Promise<number>;
}

export interface SshInvocation {
  vm: string;
  argv: string[];
  code: number;
}

function quoteWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface SshArgvInput {
  host: string;
  port: number;
  user: string;
  keys: string[];
  /** pinned host keys file and alias, when the pin is valid for the current disk */
  pin: { file: string; alias: string; keyTypes: string[] } | null;
  command?: string[];
  /** -t: ask for a terminal */
  tty?: boolean;
  /** how to reach a guest on a remote libvirt host (src/ssh/jump.ts: jumpProxyCommand) */
  proxyCommand?: string;
}

/** The system ssh's argument list (pure). */
export function sshArgv(i: SshArgvInput): string[] {
  const a = ['-p', String(i.port)];
  if (i.tty) a.push('-t');
  for (const k of i.keys) a.push('-i', k);
  a.push('-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR');
  if (i.pin) {
    // the pin is the VM's (alias), not its address: a TAP guest's DHCP address may change
    a.push(
      '-o',
      `UserKnownHostsFile=${i.pin.file}`,
      '-o',
      `HostKeyAlias=${i.pin.alias}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'CheckHostIP=no',
    );
    if (i.pin.keyTypes.length > 0) a.push('-o', `HostKeyAlgorithms=${i.pin.keyTypes.join(',')}`);
  } else {
    // not pinned yet (the guest never passed readiness on this disk): nothing to check against
    a.push('-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no');
  }
  // a VM on a remote libvirt host: its forward listens there (src/ssh/jump.ts)
  if (i.proxyCommand) a.push('-o', `ProxyCommand=${i.proxyCommand}`);
  // nothing from a project file can become an option: the user is the value of -l, and "--" ends
  // the options before the host (ssh would otherwise read options after the host too)
  a.push('-l', i.user, '--', i.host);
  if (i.command && i.command.length > 0) a.push(i.command.map(quoteWord).join(' '));
  return a;
}

function spawnSsh(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('ssh', argv, { stdio: 'inherit' });
    p.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        new BackendError(
          'SshClientMissing',
          err.code === 'ENOENT'
            ? 'the `ssh` client is not installed: install openssh-client, or use `tend exec`'
            : `cannot run ssh: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    p.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0)));
  });
}

/**
 * `tend ssh -- uptime` in a one-VM project reaches us as name "uptime" (the CLI parser drops
 * the `--`): a first word that is not a VM (nor a likely typo of one) starts the command.
 */
export function splitNameAndCommand(
  project: Project,
  name: string | undefined,
  argv: string[],
): { name: string | undefined; argv: string[] } {
  const names = project.vms.map((v) => v.name);
  if (name && !names.includes(name) && names.length === 1 && !didYouMean(name, names)) return { name: undefined, argv: [name, ...argv] };
  return { name, argv };
}

export async function sshCommand(o: SshCommandOptions): Promise<SshInvocation> {
  // a first word that starts a command (see splitNameAndCommand) keeps the project
  const ctx = await loadContext(o, o.name, {
    keepProject: (p) => o.name !== undefined && splitNameAndCommand(p, o.name, o.argv ?? []).name === undefined,
  });
  const split = splitNameAndCommand(ctx.project, o.name, o.argv ?? []);
  const name = inferVm(ctx.project, split.name, 'ssh');
  const spec = vmSpec(ctx.project, name);
  const backend = await backendFor(ctx);
  const obs = (await backend.observe(ctx.project, o.signal)).vms[name];
  // a TAP guest has no forwarded port: SSH goes to its own address (src/ssh/target.ts)
  if (!obs || obs.power === 'stopped' || (!obs.sshPort && spec.network.mode !== 'tap')) {
    throw new UsageError(`${name} is not running: \`tend start ${name}\` first`, 'VmNotRunning');
  }
  const { sshTarget } = await import('../../ssh/guest.js');
  const target = await sshTarget(ctx.stateRoot, ctx.project, spec, ctx.env);
  const keys = requireSshKeys({
    vmDir: vmDir(ctx.projDir, name),
    fileKey: spec.ssh.privateKey,
    ...(o.key ? { flagKey: o.key } : {}),
    ...(ctx.opts.cwd ? { cwd: ctx.opts.cwd } : {}),
    ...(ctx.env.HOME ? { home: ctx.env.HOME } : {}),
  });
  const pinFile = vmFile(ctx.projDir, name, 'knownHosts');
  const pin = await readPin(pinFile);
  const instanceId = (await readFile(vmFile(ctx.projDir, name, 'instanceId'), 'utf8').catch(() => '')).trim();
  const valid = pin && pin.instanceId === instanceId ? pin : null;
  const argv = sshArgv({
    host: target.host,
    port: target.port,
    user: resolveSshUser(spec, o.user),
    keys: keys.map((k) => k.path),
    pin: valid
      ? { file: pinFile, alias: valid.alias || hostAlias(ctx.project.name, name), keyTypes: valid.keys.map((k) => k.split(' ')[0]) }
      : null,
    ...(split.argv.length > 0 ? { command: split.argv } : {}),
    ...(o.tty ? { tty: true } : {}),
    ...(target.jump ? { proxyCommand: jumpProxyCommand(target.jump) } : {}),
  });
  const code = await (o.run ?? spawnSsh)(argv);
  return { vm: name, argv, code };
}

export const command: CliCommand = {
  name: 'ssh',
  description: 'open a terminal in the VM through the system ssh (user and key: docs/ssh.md)',
  examples: ['tend ssh', 'tend ssh web', 'tend ssh web --user root -- journalctl -b'],
  configure: (c) =>
    c
      .argument('[name]', 'VM name (optional when the project has one VM)')
      .argument('[command...]', 'run this instead of a login shell (after --)')
      .option(NAME_FLAG, 'the VM (vmctl spelling); then every word is the command')
      .option('--user <user>', 'log in as this user')
      .option(INSTANCE_FLAG, INSTANCE_FLAG_HELP)
      .option('--key <path>', 'also offer this private key (after the generated one)'),
  async run({ g, args, opts }) {
    const o = opts as { user?: string; key?: string; name?: string; instance?: string };
    // with --name, the first word is part of the command, not the VM
    const given = o.name ?? (args[0] as string | undefined);
    if (o.instance !== undefined && given === undefined) vmName('ssh', undefined, undefined, true);
    const name = given === undefined ? undefined : withInstance(given, o.instance);
    const argv = o.name ? [...(args[0] !== undefined ? [args[0] as string] : []), ...(args[1] as string[])] : (args[1] as string[]);
    const r = await sshCommand({
      ...g,
      ...(name ? { name } : {}),
      ...(argv.length > 0 ? { argv } : {}),
      ...(o.user ? { user: o.user } : {}),
      ...(o.key ? { key: o.key } : {}),
    });
    return r.code;
  },
};
