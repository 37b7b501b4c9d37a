/** `tend plan`: what converge would do, computed from desired (files) and observed (backend). */
import { plan, type PlanEntry } from '../../../controllers/plan.js';
import { backendFor, checkVmNames, loadContext, type GlobalOptions } from '../context.js';
import { table } from '../output.js';

export interface PlanCommandOptions extends GlobalOptions {
  recreate?: boolean;
  prune?: boolean;
  names?: string[];
}

export interface PlanResult {
  project: string;
  entries: PlanEntry[];
}

export async function planCommand(o: PlanCommandOptions): Promise<PlanResult> {
  const ctx = await loadContext(o);
  const backend = await backendFor(ctx);
  const observed = await backend.observe(ctx.project, o.signal);
  const names = o.names && o.names.length > 0 ? o.names : undefined;
  if (names) checkVmNames(ctx.project, names, Object.keys(observed.vms));
  // a fixed host port someone else holds fails the plan (controllers/port-conflicts.ts)
  await (await import('../port-check.js')).checkHostPorts(ctx.project, observed, names ? { names } : {});
  const entries = plan(ctx.project, observed, { recreate: o.recreate ?? false, prune: o.prune ?? false, ...(names ? { names } : {}) }).map(
    (e) => (ctx.notes[e.vm] ? { ...e, notes: [...e.notes, ...ctx.notes[e.vm]] } : e),
  );
  return { project: ctx.project.name, entries };
}

export function renderPlan(r: PlanResult): string {
  const rows = r.entries.map((e) => [e.vm, e.action, [...e.changed, ...e.notes].join('; ') || '-']);
  return table(['VM', 'ACTION', 'CHANGES/NOTES'], rows);
}
