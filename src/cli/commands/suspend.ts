/** `tend suspend NAME`: pause the VM's vCPUs (QMP stop); memory stays allocated. */
import { recordStatus, withDeps, type VmCommandOptions, type VmCommandResult } from './lifecycle.js';

export async function suspendCommand(o: VmCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `suspend ${o.name}`, async (ctx, deps, run) => {
    const { suspendVm } = await import('../../../controllers/imperative.js');
    const r = await suspendVm(ctx.project, deps, o.name, run);
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}
