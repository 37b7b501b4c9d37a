/**
 * `tend exec NAME -- CMD...`: run one command in the guest over SSH with the VM's key, login
 * user (src/ssh/user.ts) and forwarded SSH port; its output streams to our stdout/stderr and its exit code becomes ours.
 */
import { BackendError, UsageError } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';
import { backendFor, loadContext, vmSpec, type GlobalOptions } from '../context.js';
import { parseDuration } from '../output.js';
import { shellQuote, sshExec } from '../../ssh/exec.js';

export interface ExecCommandOptions extends GlobalOptions {
  name: string;
  argv: string[];
  /** -w/--wait: wait up to this long ("5m", "90s") for the VM to be Ready before running */
  waitFor?: string;
  /** -u/--user: log in as this user instead of the VM's (holos `exec -u`) */
  user?: string;
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

export interface ExecResult {
  vm: string;
  code: number;
  stdout: string;
  stderr: string;
}

export async function execCommand(o: ExecCommandOptions): Promise<ExecResult> {
  if (o.argv.length === 0) throw new UsageError('nothing to run: write `tend exec NAME -- COMMAND [ARGS...]`', 'NoCommand');
  const ctx = await loadContext(o, o.name);
  const spec = vmSpec(ctx.project, o.name);
  const backend = await backendFor(ctx);
  const { sshTarget, createSshGuest } = await import('../../ssh/guest.js');
  const deadline = o.waitFor ? Date.now() + parseDuration(o.waitFor, '--wait') : 0;
  for (;;) {
    const obs = (await backend.observe(ctx.project, o.signal)).vms[o.name];
    // a TAP guest has no forwarded port: SSH goes to its own address (src/ssh/target.ts)
    if (obs && obs.power === 'running' && (obs.sshPort || spec.network.mode === 'tap')) break;
    if (Date.now() >= deadline) {
      throw new UsageError(
        `${o.name} is not running${o.waitFor ? ` after waiting ${o.waitFor}` : ''}: \`tend start ${o.name}\` first`,
        'VmNotRunning',
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (o.waitFor) {
    // --wait bounds the whole wait: no stage gets more than what is left, and a timer cuts the rest
    const left = Math.max(1000, deadline - Date.now());
    const cap = AbortSignal.timeout(left);
    const { stageTimeoutMs } = await import('../../timeouts.js');
    const within = (s: 'ssh' | 'login' | 'cloudInit'): number => Math.min(stageTimeoutMs(s, spec, o.timeouts, ctx.env), left);
    let stage = 'waiting for SSH';
    const guest = createSshGuest({
      stateRoot: ctx.stateRoot,
      env: ctx.env,
      timeouts: { ssh: within('ssh'), login: within('login'), cloudInit: within('cloudInit') },
      onOutput: (_vm, line, stream) => {
        if (stream === 'status') stage = line;
      },
    });
    try {
      await guest.waitReady(ctx.project, spec, o.signal ? AbortSignal.any([o.signal, cap]) : cap);
    } catch (err) {
      if (cap.aborted && !o.signal?.aborted) {
        throw new BackendError(
          'NotReady',
          `${o.name} is not Ready after waiting ${o.waitFor} (last stage: ${stage}): \`tend logs ${o.name} --console\` shows its boot`,
        );
      }
      throw err;
    }
  }
  const r = await sshExec({
    ...(await sshTarget(ctx.stateRoot, ctx.project, spec, ctx.env)),
    ...(o.user ? { user: o.user } : {}),
    command: o.argv.map(shellQuote).join(' '),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.stdout ? { onStdout: o.stdout } : {}),
    ...(o.stderr ? { onStderr: o.stderr } : {}),
  });
  return { vm: o.name, ...r };
}

export const command: CliCommand = {
  name: 'exec',
  description: "run a command in the VM over SSH; its exit code becomes tend's",
  examples: [
    'tend exec web -- uname -a',
    'tend exec web',
    'tend exec -u root web -- id',
    "tend exec db -- sh -c 'df -h /'",
    'tend up & tend exec -w 5m web -- cloud-init status',
  ],
  stageTimeouts: true,
  configure: (c) =>
    c
      .argument('<name>', 'VM name')
      .argument('[command...]', 'command and arguments (after --); none: an interactive shell, as `tend ssh NAME`')
      .option('-w, --wait <duration>', 'wait up to this long for the VM to be Ready (running, SSH, cloud-init) first')
      .option('-u, --user <user>', "log in as this user (default: the VM's login user)"),
  async run({ g, args, opts, io }) {
    const o = opts as { wait?: string; user?: string };
    const argv = args[1] as string[];
    if (argv.length === 0) {
      // holos: `exec NAME` alone opens a shell
      const { sshCommand } = await import('./ssh.js');
      return (await sshCommand({ ...g, name: args[0] as string, ...(o.user ? { user: o.user } : {}) })).code;
    }
    const r = await execCommand({
      ...g,
      name: args[0] as string,
      argv,
      ...(o.user ? { user: o.user } : {}),
      ...(typeof o.wait === 'string' ? { waitFor: o.wait } : {}),
      stdout: (b) => io.stdout(b),
      stderr: (b) => io.stderr(b),
    });
    return r.code;
  },
};
