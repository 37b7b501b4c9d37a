/** `tend restart NAME...`: stop the VMs and start them again with the current settings (disks kept), side by side. */
import { logEvent, seconds, type CliCommand } from '../command.js';
import { printVmResults, withEachVm, withGrace, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { NAME_FLAG, NAME_FLAG_HELP, vmNames } from '../name-flag.js';

export interface RestartCommandOptions extends VmCommandOptions {
  timeout?: number;
  provision?: boolean;
}

export async function restartCommand(o: RestartCommandOptions): Promise<VmCommandResult> {
  const [r] = await restartVmsCommand({ ...o, names: [o.name] });
  return r!;
}

/** `tend restart web db`: each VM as `tend restart NAME` would, under one lock, side by side. */
export async function restartVmsCommand(o: Omit<RestartCommandOptions, 'name'> & { names: readonly string[] }): Promise<VmCommandResult[]> {
  const { restartVm } = await import('../../../controllers/imperative.js');
  return withEachVm(o, 'restart', o.names, (ctx, deps, run, name) =>
    restartVm(withGrace(ctx.project, name, o.timeout), deps, name, { ...run, provision: o.provision ?? true }),
  );
}

export const command: CliCommand = {
  name: 'restart',
  description: 'stop VMs, then converge them (start, provision)',
  examples: ['tend restart web', 'tend restart web db'],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[names...]', 'VM names (several: restarted side by side)')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option('--timeout <seconds>', 'ACPI grace period before SIGTERM', seconds),
  async run({ g, args, opts, io }) {
    const o = opts as { timeout?: number; name?: string };
    const rs = await restartVmsCommand({
      ...g,
      names: vmNames('restart', args[0] as string[], o.name),
      onEvent: logEvent(g),
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    });
    return printVmResults(g.json, io, rs);
  },
};
