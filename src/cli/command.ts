/**
 * What a command file exports: its whole surface in one object. src/cli/main.ts turns it into a
 * commander command (arguments, options, help, examples), fills the global options, calls `run`
 * and exits with the code it returns. `run` parses the flags, calls the command's plain async
 * function (the one tests call directly), and prints the result through `io`.
 */
import type { Command } from 'commander';
import type { TendEvent } from '../../schemas/ports.js';
import { EXIT, TendError } from '../../schemas/errors.js';
import type { GlobalOptions } from './context.js';

/** The terminal, as a command may use it (main.ts's implementation writes to stdout/stderr). */
export interface CliIo {
  /** a result line on stdout (a newline is added) */
  out(s: string): void;
  /** a message on stderr (a newline is added) */
  err(s: string): void;
  /** a JSON result on stdout */
  json(v: unknown): void;
  /** bytes as they come (exec, run) */
  stdout(b: Uint8Array | string): void;
  stderr(b: Uint8Array | string): void;
}

export interface Invocation {
  /** global options (--file, --json, --state-dir, ...), the signal, the logger when `log` is set */
  g: GlobalOptions;
  /** positional arguments, as declared (a variadic one is a string[]) */
  args: unknown[];
  /** the command's own options */
  opts: Record<string, unknown>;
  io: CliIo;
  /** the words after `tend` as typed (for commands that parse their own, like run) */
  rawArgs: string[];
  /** the command's help text */
  help(): string;
  /** the program's root command (`tend completion` walks its tree) */
  program(): Command;
}

export interface CliCommand {
  name: string;
  aliases?: readonly string[];
  /** one line; the registry in main.ts repeats it for `tend --help` (a unit test keeps them equal) */
  description: string;
  examples?: readonly string[];
  /** text after the usage in --help (before the examples): what `run`, which parses its own flags, takes */
  helpAfter?: string;
  /** not listed in help (`tend __complete`, which the completion scripts call) */
  hidden?: boolean;
  /** readiness stage time-limit flags (--start-timeout, --ssh-timeout, ...) */
  stageTimeouts?: boolean;
  /** the logger (pino) and live guest output are set up in `g` */
  log?: boolean;
  /** brings VMs up or down: a live line per VM on a terminal, periodic lines otherwise (src/cli/live.ts); implies `log` */
  live?: boolean;
  /** arguments and options */
  configure?(c: Command): void;
  /** subcommands (`image pull`, `volume ls`); a command has these or `run` */
  subcommands?: readonly CliCommand[];
  /**
   * The exit code of a failure of this command (its own error, or a usage error commander
   * found), given the one tend uses elsewhere (`exec`: docker's 125/126)
   */
  failureExitCode?(e: unknown, code: number): number;
  /** parse, call, print; resolves to the exit code */
  run?(inv: Invocation): Promise<number>;
}

/** Controller events as log lines (human on a TTY, JSON lines with --json). */
export function logEvent(g: GlobalOptions): (e: TendEvent) => void {
  return (e) => {
    g.display?.event(e);
    // a live display shows the event on the VM's line (and warnings in full above it)
    if (g.display?.mode === 'live') return;
    g.log?.[e.type === 'Warning' ? 'warn' : 'info']({ vm: e.vm, reason: e.reason }, e.message);
  };
}

/** Repeatable option values (`--name a --name b`). */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** --timeout's value: seconds, 0 or more. */
export function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new TendError('BadUsage', `--timeout wants seconds, got "${v}"`, EXIT.usage);
  return n;
}
