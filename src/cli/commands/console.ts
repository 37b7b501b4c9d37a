/**
 * `tend console NAME`: attach this terminal to the VM's serial console (works during boot;
 * Ctrl-] detaches). The terminal is put in raw mode while attached and restored afterwards.
 */
import type { Readable, Writable } from 'node:stream';
import type { ConsoleEnd } from '../../../schemas/ports.js';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';
import { backendFor, inferVm, loadContext, type GlobalOptions } from '../context.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, NAME_FLAG_HELP, vmName, withInstance } from '../name-flag.js';

export interface ConsoleCommandOptions extends GlobalOptions {
  name?: string;
  input?: Readable & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  output?: Writable;
  /** told once attached, before any console output (the CLI prints how to detach) */
  onAttached?: (vm: string) => void;
}

export interface ConsoleResult {
  vm: string;
  end: ConsoleEnd;
}

export async function consoleCommand(o: ConsoleCommandOptions): Promise<ConsoleResult> {
  const ctx = await loadContext(o, o.name);
  const vm = inferVm(ctx.project, o.name, 'console');
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const backend = await backendFor(ctx);
  if (!backend.attachConsole) throw new UsageError('this backend has no serial console', 'ConsoleUnsupported');
  const raw = input.isTTY === true && typeof input.setRawMode === 'function';
  if (raw) input.setRawMode?.(true);
  try {
    const end = await backend.attachConsole(ctx.project, vm, { input, output, onAttached: () => o.onAttached?.(vm) }, o.signal);
    return { vm, end };
  } finally {
    if (raw) input.setRawMode?.(false);
    input.pause();
  }
}

export const command: CliCommand = {
  name: 'console',
  description: "attach to the VM's serial console (works during boot); Ctrl-] detaches",
  examples: ['tend console web'],
  configure: (c) =>
    c
      .argument('[name]', 'VM name (optional when the project has one VM)')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option(INSTANCE_FLAG, INSTANCE_FLAG_HELP),
  async run({ g, args, opts, io }) {
    const o = opts as { name?: string; instance?: string };
    const name =
      o.instance !== undefined
        ? withInstance(vmName('console', args[0] as string | undefined, o.name, true), o.instance)
        : vmName('console', args[0] as string | undefined, o.name, false);
    const r = await consoleCommand({
      ...g,
      ...(name ? { name } : {}),
      onAttached: (vm) => io.err(`attached to ${vm}'s serial console; Ctrl-] detaches`),
    });
    io.err(r.end === 'detached' ? '\ndetached' : `\n${r.vm}'s console closed (the VM stopped?)`);
    return EXIT.ok;
  },
};
