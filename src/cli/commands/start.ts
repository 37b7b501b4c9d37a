/** `tend start NAME`: clear a `tend stop` intent, then converge that VM (and what it depends on). */
import type { ConvergeCommandResult } from './converge.js';
import { recordStatus, withDeps, type VmCommandOptions } from './lifecycle.js';

export interface StartCommandOptions extends VmCommandOptions {
  provision?: boolean;
}

export async function startCommand(o: StartCommandOptions): Promise<ConvergeCommandResult> {
  return withDeps(o, `start ${o.name}`, async (ctx, deps, run) => {
    const { startVm } = await import('../../../controllers/imperative.js');
    const r = await startVm(ctx.project, deps, o.name, { ...run, provision: o.provision ?? true });
    await recordStatus(ctx, r.vms);
    return { ok: r.ok, project: ctx.project.name, entries: r.entries, vms: r.vms };
  });
}
