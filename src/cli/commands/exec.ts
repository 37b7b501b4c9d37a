/**
 * `tend exec NAME -- CMD...`: run one command in the guest over SSH with the VM's key, login
 * user (src/ssh/user.ts) and forwarded SSH port; its output streams to our stdout/stderr and its
 * exit code becomes ours. docker's habits: `-i` forwards stdin, `-t` allocates a pseudo-terminal,
 * and tend's own failures exit 125/126 (docs/cli.md, "exec exit codes"). No command: a shell
 * through the system ssh (`tend ssh`).
 */
import type { Readable } from 'node:stream';
import { BackendError, TendError, UsageError } from '../../../schemas/errors.js';
import { closeConnection, connectForCommand } from '../guest-connection.js';
import type { CliCommand } from '../command.js';
import { INSTANCE_FLAG_HELP, withInstance } from '../name-flag.js';
import { backendFor, loadContext, vmSpec, type GlobalOptions } from '../context.js';
import { parseDuration } from '../output.js';
import { execOnClient, shellQuote } from '../../ssh/exec.js';

export interface ExecCommandOptions extends GlobalOptions {
  name: string;
  argv: string[];
  /** -w/--wait: wait up to this long ("5m", "90s") for the VM to be Ready before running */
  waitFor?: string;
  /** -u/--user: log in as this user instead of the VM's (holos `exec -u`) */
  user?: string;
  /** -i: the command's stdin (forwarded until it ends); without it the command reads EOF at once */
  stdin?: Readable;
  /** -t: a pseudo-terminal of this size and type */
  pty?: { rows: number; cols: number; term: string };
  /** gets a function that resizes the pseudo-terminal */
  onPty?: (resize: (rows: number, cols: number) => void) => void;
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

export interface ExecResult {
  vm: string;
  code: number;
  stdout: string;
  stderr: string;
}

/** Exit codes of `tend exec` when tend, not the guest command, decides (docker run/exec's). */
export const EXEC_EXIT = {
  /** tend failed: the command did not run (bad usage, VM not running, SSH refused, ...) or its outcome is unknown */
  tendFailed: 125,
  /** the guest's sshd refused to start the command */
  cannotInvoke: 126,
  /** command not found: the guest's shell reports it itself */
  notFound: 127,
} as const;

function nextSteps(name: string, argv: string[]): string {
  const cmd = argv.length > 0 ? ` -- ${argv.map(shellQuote).join(' ')}` : '';
  return `is it still booting? \`tend exec -w 5m ${name}${cmd}\` waits until it is Ready; \`tend logs ${name} --console\` shows its boot`;
}

export async function execCommand(o: ExecCommandOptions): Promise<ExecResult> {
  if (o.argv.length === 0) throw new UsageError('nothing to run: write `tend exec NAME -- COMMAND [ARGS...]`', 'NoCommand');
  const ctx = await loadContext(o, o.name);
  const spec = vmSpec(ctx.project, o.name);
  const backend = await backendFor(ctx);
  const { createSshGuest } = await import('../../ssh/guest.js');
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
  const { client, target } = await connectForCommand(ctx, spec, { user: o.user, signal: o.signal, unreachable: nextSteps(o.name, o.argv) });
  try {
    const r = await execOnClient(client, target, o.argv.map(shellQuote).join(' '), {
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.stdout ? { onStdout: o.stdout } : {}),
      ...(o.stderr ? { onStderr: o.stderr } : {}),
      stdin: o.stdin ?? null,
      ...(o.pty ? { pty: o.pty } : {}),
      ...(o.onPty ? { onPty: o.onPty } : {}),
      signalAsCode: true,
    });
    return { vm: o.name, ...r };
  } finally {
    closeConnection(client);
  }
}

/** tend's failures become 125 (126: the guest refused to start the command); Ctrl-C stays 130, help 0. */
export function execFailureCode(e: unknown, code: number): number {
  if (code === 0 || code === 130) return code;
  if (e instanceof TendError && e.reason === 'SshExecFailed') return EXEC_EXIT.cannotInvoke;
  return EXEC_EXIT.tendFailed;
}

export const command: CliCommand = {
  name: 'exec',
  description: "run a command in the VM over SSH; its exit code becomes tend's (125: tend failed)",
  examples: [
    'tend exec web -- uname -a',
    'tend exec web',
    'tend exec -u deploy web -- id',
    "tend exec db -- sh -c 'df -h /'",
    'tar c src | tend exec -i web -- tar x -C /srv',
    'tend exec -it web -- top',
    'tend up & tend exec -w 5m web -- cloud-init status',
  ],
  stageTimeouts: true,
  failureExitCode: execFailureCode,
  configure: (c) =>
    c
      .argument('<name>', 'VM name')
      .argument('[command...]', 'command and arguments (after --); none: an interactive shell, as `tend ssh NAME`')
      .option('-w, --wait <duration>', 'wait up to this long for the VM to be Ready (running, SSH, cloud-init) first')
      .option('-u, --user <user>', "log in as this user (default: the VM's login user)")
      .option('-i, --interactive', "forward tend's stdin to the command (without it the command reads end-of-file)")
      .option('-t, --tty', 'allocate a pseudo-terminal (full-screen programs; stderr then arrives on stdout)')
      .addHelpText(
        'after',
        "\nExit codes: the guest command's own (128+N when signal N killed it); 125: tend failed (VM not running, SSH refused, ...);\n126: the guest refused to start the command; 127: command not found (from the guest's shell); 130: interrupted.\n",
      )
      // -i is docker's --interactive here: the named instance is --instance only
      .option('--instance <name>', INSTANCE_FLAG_HELP),
  async run({ g, args, opts, io }) {
    const o = opts as { wait?: string; user?: string; interactive?: boolean; tty?: boolean; instance?: string };
    const argv = args[1] as string[];
    const name = withInstance(args[0] as string, o.instance);
    if (argv.length === 0) {
      // holos: `exec NAME` alone opens a shell (the shell reads our stdin either way)
      const { sshCommand } = await import('./ssh.js');
      return (await sshCommand({ ...g, name, ...(o.user ? { user: o.user } : {}), ...(o.tty ? { tty: true } : {}) })).code;
    }
    const stdin = process.stdin;
    const raw = Boolean(o.tty && o.interactive && stdin.isTTY);
    const out = process.stdout;
    let onResize: (() => void) | undefined;
    if (raw) stdin.setRawMode(true);
    try {
      const r = await execCommand({
        ...g,
        name,
        argv,
        ...(o.user ? { user: o.user } : {}),
        ...(typeof o.wait === 'string' ? { waitFor: o.wait } : {}),
        ...(o.interactive ? { stdin } : {}),
        ...(o.tty
          ? {
              pty: { rows: out.rows || 24, cols: out.columns || 80, term: process.env.TERM || 'xterm' },
              onPty: (resize: (rows: number, cols: number) => void) => {
                onResize = () => resize(out.rows || 24, out.columns || 80);
                out.on('resize', onResize);
              },
            }
          : {}),
        stdout: (b) => io.stdout(b),
        stderr: (b) => io.stderr(b),
      });
      return r.code;
    } finally {
      if (onResize) out.off('resize', onResize);
      if (raw) stdin.setRawMode(false);
      if (o.interactive) stdin.pause();
    }
  },
};
