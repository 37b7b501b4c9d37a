/** `tend resume NAME`: continue a suspended VM (QMP cont). */
import { recordStatus, withDeps, type VmCommandOptions, type VmCommandResult } from './lifecycle.js';

export async function resumeCommand(o: VmCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `resume ${o.name}`, async (ctx, deps, run) => {
    const { resumeVm } = await import('../../../controllers/imperative.js');
    const r = await resumeVm(ctx.project, deps, o.name, run);
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}
