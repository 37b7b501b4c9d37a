#!/usr/bin/env node
/**
 * The `tend` entry: global flags, the registry of commands, and the one exit point (errors
 * become messages and exit codes here, and only here). Each command is one file in commands/
 * that exports its whole surface (`command: CliCommand`, src/cli/command.ts); the registry
 * below loads only the module of the command being run, so `tend --help` and `tend plan` start
 * fast (ssh2, xstate, pino are only loaded by the commands that use them).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { EXIT, TendError, ValidationError } from '../../schemas/errors.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';
import { commandWord, rewriteFollowFlag } from './argv.js';
import type { CliCommand, CliIo } from './command.js';
import { namesOf, REGISTRY } from './registry.js';
import type { GlobalOptions } from './context.js';
import { parseDuration } from './output.js';
import { DEFAULT_TIMEOUTS, TIMEOUT_ENV } from '../timeouts.js';
import { tendVersion } from './package-version.js';
import { permissionError, usageOf } from './next-step.js';

const line = (s: string): string => (s.endsWith('\n') ? s : s + '\n');
const io: CliIo = {
  out: (s) => void (s && process.stdout.write(line(s))),
  err: (s) => void process.stderr.write(line(s)),
  json: (v) => void process.stdout.write(JSON.stringify(v, null, 2) + '\n'),
  stdout: (b) => void process.stdout.write(b),
  stderr: (b) => void process.stderr.write(b),
};

/** Readiness stage limits for every VM a command brings up (src/timeouts.ts). */
const STAGE_FLAGS = [
  ['start', '--start-timeout', 'QEMU started until QMP answers'],
  ['ssh', '--ssh-timeout', "until the guest's sshd answers"],
  ['login', '--login-timeout', 'from the SSH banner until a login works'],
  ['cloudInit', '--cloud-init-timeout', 'from the first login until cloud-init is done'],
] as const;

async function globals(cmd: Command, signal: AbortSignal): Promise<GlobalOptions> {
  const o = cmd.optsWithGlobals<{
    file?: string[];
    project?: string;
    json?: boolean;
    stateDir?: string;
    lockTimeout?: string;
    wait?: boolean;
    verbose?: boolean;
    backend?: string;
    connect?: string;
  }>();
  const g: GlobalOptions = {
    json: o.json ?? false,
    lockTimeout: o.lockTimeout ?? '5m',
    wait: o.wait !== false,
    verbose: o.verbose ?? false,
    signal,
    onNote: (message) => io.err(`tend: ${message}`),
    ...(o.file ? { file: o.file } : {}),
    ...(o.project !== undefined ? { project: o.project } : {}),
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
  };
  if (o.backend !== undefined || o.connect !== undefined) {
    const { parseBackendKind } = await import('../backend/select.js');
    g.backendFlags = {
      ...(o.backend !== undefined ? { backend: parseBackendKind(o.backend, '--backend') } : {}),
      ...(o.connect !== undefined ? { connect: o.connect } : {}),
    };
  }
  const flags = o as Record<string, unknown>;
  for (const [stage, flag] of STAGE_FLAGS) {
    const v = flags[`${stage}Timeout`];
    if (typeof v !== 'string') continue;
    const ms = parseDuration(v, flag);
    if (ms <= 0) throw new TendError('BadDuration', `${flag} must be more than 0s, got "${v}"`, EXIT.usage);
    (g.timeouts ??= {})[stage] = ms;
  }
  return g;
}

/** Under every command's --help (docs/cli.md, "Exit codes"). */
const EXIT_CODES_HELP = `
Exit codes: 0 done, 1 something is still wrong, 2 usage (unknown command, option or VM, no
project file), 3 invalid project files (nothing changed), 4 project lock held, 5 not found,
6 QEMU/qemu-img/download/SSH failed, 130 interrupted. exec: the guest command's code (125 when
tend itself fails, 126 when the command cannot be started).
`;

const examples = (lines: readonly string[]): string => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** A command file's surface as a commander command under `parent`; its exit code goes to `exit`. */
export function define(parent: Command, spec: CliCommand, signal: AbortSignal, exit: (code: number) => void): Command {
  const c = (spec.hidden ? parent.command(spec.name, { hidden: true }) : parent.command(spec.name)).description(spec.description);
  for (const a of spec.aliases ?? []) c.alias(a);
  if (spec.stageTimeouts) {
    for (const [stage, flag, what] of STAGE_FLAGS)
      c.option(
        `${flag} <duration>`,
        `time limit: ${what} (default: the VM's \`timeouts\`, else $${TIMEOUT_ENV[stage]}, else ${DEFAULT_TIMEOUTS[stage]}s)`,
      );
  }
  spec.configure?.(c);
  // after the usage: the command's own text (run's options), its examples, the exit codes
  const after = [spec.helpAfter ?? '', spec.examples ? examples(spec.examples) : '', parent.parent === null ? EXIT_CODES_HELP : '']
    .filter(Boolean)
    .join('');
  if (after) c.addHelpText('after', after);
  for (const sub of spec.subcommands ?? []) define(c, sub, signal, exit);
  const run = spec.run;
  if (run) {
    c.action(async (...a: unknown[]) => {
      const cmd = a[a.length - 1] as Command;
      const g = await globals(cmd, signal);
      const cio = spec.log || spec.live ? await (await import('./terminal.js')).setupTerminal(g, io, spec.live ?? false) : io;
      let root = cmd;
      while (root.parent) root = root.parent;
      const rawArgs = (root as unknown as { rawArgs: string[] }).rawArgs.slice(2);
      try {
        exit(
          await run({
            g,
            args: a.slice(0, -2),
            opts: cmd.opts(),
            io: cio,
            rawArgs,
            help: () => cmd.helpInformation() + after,
            program: () => root,
          }),
        );
      } finally {
        g.display?.close();
      }
    });
  }
  return c;
}

/** The program with every command listed and `word`'s command fully defined (its module loaded). */
export async function buildProgram(
  word: string | null,
  signal: AbortSignal,
  exit: (code: number) => void,
  onCommand?: (spec: CliCommand) => void,
  json = false,
): Promise<Command> {
  const program = new Command('tend')
    .description('Keep the QEMU VMs declared in your project files running: edit, save, converge.')
    .version(tendVersion(), '-V, --version', 'print the version')
    .option(
      '-f, --file <path>',
      'project file (repeatable); default: discover tend.yaml, holos.yaml, VMFile.kdl, vms.yml',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('-p, --project <project>', 'the project to work on, from anywhere: its folder, a project file, or its name (see `tend ls`)')
    .option('--json', 'machine-readable output (JSON on stdout, JSON-lines logs)')
    .option('--state-dir <dir>', 'state folder (default $TEND_STATE_DIR, else $XDG_DATA_HOME/tend)')
    .option('--lock-timeout <duration>', 'how long mutating commands wait for the project lock', '5m')
    .option('--no-wait', 'fail at once when the project lock is held')
    .option('-v, --verbose', 'debug logs; stack traces on unexpected errors')
    .option(
      '--backend <kind>',
      "run VMs on qemu, libvirt, or auto (libvirt when its daemon answers); default: the file's `backend`, else $TEND_BACKEND, else qemu",
    )
    .option(
      '--connect <uri>',
      "libvirt URI (qemu:///system, qemu:///session, qemu+ssh://user@host/system); default: the file's `connect`, else $TEND_LIBVIRT_URI, else system as root, session otherwise",
    )
    .addHelpText('after', examples(['tend validate', 'tend plan', 'tend up', 'tend ps', 'tend exec web -- uname -a', 'tend help up']))
    .showHelpAfterError('(run `tend help` for usage)')
    .exitOverride()
    // with --json, a usage error is one JSON object (printError), not commander's text
    .configureOutput({ writeErr: (s) => void (json ? undefined : process.stderr.write(s)) });
  const terms = new Map<Command, string>();
  // every subcommand's --help lists the global options too (commander copies this setting to
  // the commands created after it)
  program.configureHelp({ showGlobalOptions: true, subcommandTerm: (c) => terms.get(c) ?? defaultTerm(c) });
  // `tend completion` walks the whole command tree: every module is loaded for it
  const everything = word === 'completion';
  if (word === '__complete') define(program, (await import('./commands/completion.js')).completeCommand, signal, exit);
  for (const entry of REGISTRY) {
    const [name, ...aliases] = namesOf(entry.term);
    const named = word !== null && (name === word || aliases.includes(word));
    if (everything || named) {
      const spec = (await entry.load()).command;
      if (named) onCommand?.(spec);
      define(program, spec, signal, exit);
      continue;
    }
    // listed in `tend --help` only: the module is not loaded
    const stub = program.command(name).description(entry.description);
    for (const a of aliases) stub.alias(a);
    terms.set(stub, entry.term);
  }
  return program;
}

function defaultTerm(c: Command): string {
  const args = c.registeredArguments.map((a) =>
    a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`,
  );
  return [[c.name(), ...c.aliases()].join('|'), c.options.length ? '[options]' : '', ...args].filter(Boolean).join(' ');
}

/** The exit code of error `e`; `remap`: the command's own convention (CliCommand.failureExitCode). */
function exitCodeOf(e: unknown, remap?: (e: unknown, code: number) => number): number {
  const code =
    e instanceof TendError
      ? e.reason === 'Aborted'
        ? 130
        : e.exitCode
      : e instanceof CommanderError
        ? e.exitCode === 0
          ? EXIT.ok
          : EXIT.usage
        : e instanceof Error && e.name === 'AbortError'
          ? 130
          : EXIT.failure;
  return remap ? remap(e, code) : code;
}

function printError(e0: unknown, argv: readonly string[], remap?: (e: unknown, code: number) => number): number {
  const verbose = argv.includes('-v') || argv.includes('--verbose');
  const json = argv.includes('--json');
  // a permission error from anywhere: which path, and the flag or sudo that gets past it
  const e = (e0 instanceof TendError && e0.next) || e0 instanceof CommanderError ? e0 : (permissionError(e0, argv) ?? e0);
  const code = exitCodeOf(e, remap);
  if (json && e instanceof CommanderError && e.exitCode !== 0) {
    io.err(JSON.stringify({ error: { ...usageOf(e, argv), exitCode: code } }));
    return code;
  }
  if (json && e instanceof TendError) {
    // machine-readable: one JSON object on stderr (stdout stays for results)
    const diagnostics = e instanceof ValidationError ? { diagnostics: e.diagnostics } : {};
    const next = e.next ? { next: e.next } : {};
    io.err(JSON.stringify({ error: { reason: e.reason, message: e.message, exitCode: code, ...next, ...diagnostics } }));
    return code;
  }
  printHuman(e, verbose);
  return code;
}

function printHuman(e: unknown, verbose: boolean): void {
  // commander printed its own message already
  if (e instanceof CommanderError) return;
  if (e instanceof ValidationError) {
    for (const d of e.diagnostics) io.err(formatDiagnostic(d));
    io.err(`tend: ${e.message}; nothing was changed`);
    return;
  }
  if (e instanceof TendError && e.reason === 'Aborted') {
    io.err(`tend: ${e.message}`);
    return;
  }
  if (e instanceof TendError) {
    io.err(`tend: ${e.message}`);
    if (e.next) io.err(`  next: ${e.next}`);
    if (verbose && e.cause) io.err(`  cause: ${e.cause instanceof Error ? (e.cause.stack ?? e.cause.message) : String(e.cause)}`);
    return;
  }
  if (e instanceof Error && e.name === 'AbortError') {
    io.err('tend: interrupted');
    return;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.err(`tend: unexpected error: ${msg}${verbose ? '' : ' (run with -v for details)'}`);
  if (verbose && e instanceof Error && e.stack) io.err(e.stack);
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const ac = new AbortController();
  let exitCode: number = EXIT.ok;
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    io.err(`tend: ${sig}: stopping (again to force)`);
    ac.abort(Object.assign(new Error(`interrupted by ${sig}`), { name: 'AbortError' }));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let remap: ((e: unknown, code: number) => number) | undefined;
  try {
    // `-f` after logs/events means --follow, not the global --file
    const args = rewriteFollowFlag(argv);
    const program = await buildProgram(
      commandWord(args),
      ac.signal,
      (code) => (exitCode = code),
      (spec) => {
        if (spec.failureExitCode) remap = spec.failureExitCode.bind(spec);
      },
      argv.includes('--json'),
    );
    await program.parseAsync(args);
    return exitCode;
  } catch (e) {
    return printError(e, argv, remap);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
/**
 * Resolves once everything written to `stream` so far has left the process. A pipe holds 64 KiB:
 * process.exit() would drop what a slow reader has not taken yet (`tend plan --json | less`).
 */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.once('error', () => resolve()); // EPIPE: the reader is gone, nothing more to wait for
    stream.write('', () => resolve());
  });
}

/**
 * A reader that goes away (`tend plan --help | head -3`) is not an error of tend's: what is left
 * to print is dropped, the command itself runs to its end, and its exit code stands.
 */
function readerMayLeave(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

if (invokedDirectly()) {
  readerMayLeave(process.stdout);
  readerMayLeave(process.stderr);
  const code = await main();
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}
