/** `tend stop NAME`: record the stop intent (so watch does not undo it), then stop the VM. */
import type { Project } from '../../../schemas/model.js';
import { recordStatus, withDeps, type VmCommandOptions, type VmCommandResult } from './lifecycle.js';

export interface StopCommandOptions extends VmCommandOptions {
  /** seconds between ACPI powerdown and SIGTERM; default the VM's stop_grace_period */
  timeout?: number;
}

/** The project with one VM's grace period replaced (how --timeout reaches the backend). */
export function withGrace(project: Project, name: string, timeout: number | undefined): Project {
  if (timeout === undefined) return project;
  return { ...project, vms: project.vms.map((v) => (v.name === name ? { ...v, stopGracePeriod: timeout } : v)) };
}

export async function stopCommand(o: StopCommandOptions): Promise<VmCommandResult> {
  return withDeps(o, `stop ${o.name}`, async (ctx, deps, run) => {
    const { stopVm } = await import('../../../controllers/imperative.js');
    const r = await stopVm(withGrace(ctx.project, o.name, o.timeout), deps, o.name, run);
    await recordStatus(ctx, { [o.name]: r });
    return { project: ctx.project.name, vm: o.name, ...r };
  });
}
