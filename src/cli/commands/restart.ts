/** `tend restart NAME`: stop the VM and start it again with the current settings (disk kept). */
import { recordStatus, withDeps, type VmCommandOptions, type VmCommandResult } from './lifecycle.js';
import { withGrace } from './stop.js';

export interface RestartCommandOptions extends VmCommandOptions {
  timeout?: number;
  provision?: boolean;
}

export async function restartCommand(o: RestartCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `restart ${o.name}`, async (ctx, deps, run) => {
    const { restartVm } = await import('../../../controllers/imperative.js');
    const r = await restartVm(withGrace(ctx.project, o.name, o.timeout), deps, o.name, { ...run, provision: o.provision ?? true });
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}
