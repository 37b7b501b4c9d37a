/** `tend destroy NAME`: stop the VM and delete its folder (disk, seed, keys); named volumes are kept. */
import { withDeps, type VmCommandOptions, type VmCommandResult } from './lifecycle.js';

export async function destroyCommand(o: VmCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `destroy ${o.name}`, async (ctx, deps, run) => {
    const { destroyVm } = await import('../../../controllers/imperative.js');
    const r = await destroyVm(ctx.project, deps, o.name, run);
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}
