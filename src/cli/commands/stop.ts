/** `tend stop NAME`: record the stop intent (so watch does not undo it), then stop the VM. */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, seconds, type CliCommand } from '../command.js';
import { recordStatus, renderVmResult, vmResultOk, withDeps, withGrace, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, NAME_FLAG_HELP, vmName, withInstance } from '../name-flag.js';

export interface StopCommandOptions extends VmCommandOptions {
  /** seconds between ACPI powerdown and SIGTERM; default the VM's stop_grace_period */
  timeout?: number;
  /** save the VM's memory and device state (restored by the next start) instead of powering it off */
  save?: boolean;
}

export async function stopCommand(o: StopCommandOptions): Promise<VmCommandResult> {
  return withDeps({ ...o, fromState: true }, `stop ${o.name}`, async (ctx, deps, run) => {
    const { stopVm } = await import('../../../controllers/imperative.js');
    const graced = withGrace(ctx.project, o.name, o.timeout);
    const project = o.save
      ? { ...graced, vms: graced.vms.map((v) => (v.name === o.name ? { ...v, stopMode: 'save' as const } : v)) }
      : graced;
    const r = await stopVm(project, deps, o.name, run);
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}

export const command: CliCommand = {
  name: 'stop',
  description: 'stop a VM and keep it stopped (also under `tend watch`) until `tend start` or `tend up`',
  examples: ['tend stop web', 'tend stop web --timeout 5', 'tend stop web --save'],
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[name]', 'VM name')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option(INSTANCE_FLAG, INSTANCE_FLAG_HELP)
      .option('--timeout <seconds>', 'wait this long after ACPI powerdown before SIGTERM (default: its stop_grace_period)', seconds)
      .option('--save', 'save its memory and device state: the next start restores it in seconds instead of booting (as `stop: save`)'),
  async run({ g, args, opts, io }) {
    const o = opts as { timeout?: number; name?: string; instance?: string; save?: boolean };
    const r = await stopCommand({
      ...g,
      name: withInstance(vmName('stop', args[0] as string | undefined, o.name, true), o.instance),
      onEvent: logEvent(g),
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      ...(o.save ? { save: true } : {}),
    });
    if (g.json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  },
};
