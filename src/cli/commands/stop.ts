/** `tend stop NAME...`: record the stop intent (so watch does not undo it), then stop the VMs (side by side). */
import { logEvent, seconds, type CliCommand } from '../command.js';
import { printVmResults, withEachVm, withGrace, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, NAME_FLAG_HELP, vmNames, withInstance } from '../name-flag.js';

export interface StopCommandOptions extends VmCommandOptions {
  /** seconds between ACPI powerdown and SIGTERM; default the VM's stop_grace_period */
  timeout?: number;
  /** save the VM's memory and device state (restored by the next start) instead of powering it off */
  save?: boolean;
}

export async function stopCommand(o: StopCommandOptions): Promise<VmCommandResult> {
  const [r] = await stopVmsCommand({ ...o, names: [o.name] });
  return r!;
}

/** `tend stop web db`: each VM as `tend stop NAME` would, under one lock, side by side. */
export async function stopVmsCommand(o: Omit<StopCommandOptions, 'name'> & { names: readonly string[] }): Promise<VmCommandResult[]> {
  const { stopVm } = await import('../../../controllers/imperative.js');
  // from the state when the files are broken: a stop must work whatever the files say (as down)
  return withEachVm({ ...o, fromState: true }, 'stop', o.names, (ctx, deps, run, name) => {
    const graced = withGrace(ctx.project, name, o.timeout);
    const project = o.save
      ? { ...graced, vms: graced.vms.map((v) => (v.name === name ? { ...v, stopMode: 'save' as const } : v)) }
      : graced;
    return stopVm(project, deps, name, run);
  });
}

export const command: CliCommand = {
  name: 'stop',
  description: 'stop VMs and keep them stopped (also under `tend watch`) until `tend start` or `tend up`',
  examples: ['tend stop web', 'tend stop web db', 'tend stop web --timeout 5', 'tend stop web --save'],
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[names...]', 'VM names (several: stopped side by side)')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option(INSTANCE_FLAG, INSTANCE_FLAG_HELP)
      .option('--timeout <seconds>', 'wait this long after ACPI powerdown before SIGTERM (default: its stop_grace_period)', seconds)
      .option('--save', 'save its memory and device state: the next start restores it in seconds instead of booting (as `stop: save`)'),
  async run({ g, args, opts, io }) {
    const o = opts as { timeout?: number; name?: string; instance?: string; save?: boolean };
    const names = vmNames('stop', args[0] as string[], o.name).map((n) => withInstance(n, o.instance));
    const rs = await stopVmsCommand({
      ...g,
      names,
      onEvent: logEvent(g),
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      ...(o.save ? { save: true } : {}),
    });
    return printVmResults(g.json, io, rs);
  },
};
