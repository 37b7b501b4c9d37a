/** `tend resume NAME`: continue a suspended VM (QMP cont). */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { recordStatus, renderVmResult, vmResultOk, withDeps, type VmCommandOptions, type VmCommandResult } from '../session.js';

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
  configure: (c) => c.argument('<name>', 'VM name'),
  async run({ g, args, io }) {
    const r = await resumeCommand({ ...g, name: args[0] as string, onEvent: logEvent(g) });
    if (g.json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  },
};
