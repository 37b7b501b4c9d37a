/** `tend plan`: what converge would do, computed from desired (files) and observed (backend). */
import { plan, type PlanEntry } from '../../../controllers/plan.js';
import { backendFor, checkVmNames, loadContext, type GlobalOptions } from '../context.js';
import { table } from '../output.js';
import { formatDiagnostic, type Diagnostic } from '../../../schemas/diagnostic.js';
import { EXIT } from '../../../schemas/errors.js';
import { collect, type CliCommand } from '../command.js';

export interface PlanCommandOptions extends GlobalOptions {
  recreate?: boolean;
  prune?: boolean;
  names?: string[];
}

export interface PlanResult {
  project: string;
  entries: PlanEntry[];
  /** the project files' warnings (errors stop the plan) */
  warnings: Diagnostic[];
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
  return { project: ctx.project.name, entries, warnings: ctx.diagnostics.filter((d) => d.severity === 'warning') };
}

export function renderPlan(r: PlanResult): string {
  const rows = r.entries.map((e) => [e.vm, e.action, [...e.changed, ...e.notes].join('; ') || '-']);
  return [...r.warnings.map(formatDiagnostic), table(['VM', 'ACTION', 'CHANGES/NOTES'], rows)].join('\n');
}

export const command: CliCommand = {
  name: 'plan',
  description: 'show what converge would do, without doing it',
  examples: ['tend plan', 'tend plan --recreate --prune', 'tend plan --json | jq .entries'],
  configure: (c) =>
    c
      .option('--recreate', 'plan recreating VMs whose image or disk shrink needs a new disk')
      .option('--prune', 'plan deleting VMs no longer declared')
      .option('--name <vm>', 'only this VM (repeatable)', collect)
      .option('--warm', 'plan as `tend up --warm` converges: warm VMs unless a VM sets warm itself'),
  async run({ g, opts, io }) {
    const o = opts as { recreate?: boolean; prune?: boolean; name?: string[]; warm?: boolean };
    const r = await planCommand({
      ...g,
      recreate: o.recreate ?? false,
      prune: o.prune ?? false,
      ...(o.name ? { names: o.name } : {}),
      ...(o.warm ? { warm: true } : {}),
    });
    if (g.json) io.json(r);
    else io.out(renderPlan(r));
    return EXIT.ok;
  },
};
