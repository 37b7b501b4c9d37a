/** `tend resume NAME`: continue a suspended VM (QMP cont). */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { recordStatus, renderVmResult, vmResultOk, withDeps, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { NAME_FLAG, NAME_FLAG_HELP, vmName } from '../name-flag.js';

export async function resumeCommand(o: VmCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `resume ${o.name}`, async (ctx, deps, run) => {
    const { resumeVm } = await import('../../../controllers/imperative.js');
    const r = await resumeVm(ctx.project, deps, o.name, run);
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}

export const command: CliCommand = {
  name: 'resume',
  description: 'continue a suspended VM',
  examples: ['tend resume web'],
  log: true,
  configure: (c) => c.argument('[name]', 'VM name').option(NAME_FLAG, NAME_FLAG_HELP),
  async run({ g, args, opts, io }) {
    const r = await resumeCommand({
      ...g,
      name: vmName('resume', args[0] as string | undefined, (opts as { name?: string }).name, true),
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  },
};
