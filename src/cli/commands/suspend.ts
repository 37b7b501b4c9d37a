/** `tend suspend NAME`: pause the VM's vCPUs (QMP stop); memory stays allocated. */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { recordStatus, renderVmResult, vmResultOk, withDeps, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { NAME_FLAG, NAME_FLAG_HELP, vmName } from '../name-flag.js';

export async function suspendCommand(o: VmCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `suspend ${o.name}`, async (ctx, deps, run) => {
    const { suspendVm } = await import('../../../controllers/imperative.js');
    const r = await suspendVm(ctx.project, deps, o.name, run);
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}

export const command: CliCommand = {
  name: 'suspend',
  description: 'pause the VM (its CPUs stop; memory stays)',
  examples: ['tend suspend web'],
  log: true,
  configure: (c) => c.argument('[name]', 'VM name').option(NAME_FLAG, NAME_FLAG_HELP),
  async run({ g, args, opts, io }) {
    const r = await suspendCommand({
      ...g,
      name: vmName('suspend', args[0] as string | undefined, (opts as { name?: string }).name, true),
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  },
};
