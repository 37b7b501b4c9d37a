/**
 * `tend converge` (alias `tend up`): make every declared VM (or the named ones) real, then exit.
 * An explicit converge clears `tend stop` intents of the VMs it targets (design §3): that is
 * how `tend up` undoes `tend stop` and `tend down`.
 */
import type { PlanEntry } from '../../../controllers/plan.js';
import type { TendEvent } from '../../../schemas/ports.js';
import { formatDiagnostic, type Diagnostic } from '../../../schemas/diagnostic.js';
import { checkVmNames, type GlobalOptions } from '../context.js';
import { recordStatus, renderVmLine, withDeps } from './lifecycle.js';

export interface ConvergeCommandOptions extends GlobalOptions {
  names?: string[];
  recreate?: boolean;
  prune?: boolean;
  /** false with --no-provision */
  provision?: boolean;
  onEvent?: (e: TendEvent) => void;
}

export interface ConvergeCommandResult {
  ok: boolean;
  project: string;
  entries: PlanEntry[];
  vms: Record<string, { state: string; error?: string; conditions: string[] }>;
  /** the project files' warnings (converge/up) */
  warnings?: Diagnostic[];
}

export async function convergeCommand(o: ConvergeCommandOptions, commandName = 'converge'): Promise<ConvergeCommandResult> {
  const names = o.names && o.names.length > 0 ? o.names : undefined;
  return withDeps(o, commandName, async (ctx, deps, run) => {
    if (names) checkVmNames(ctx.project, names);
    const observed = await deps.backend.observe(ctx.project, o.signal);
    // a fixed host port someone else holds fails before anything starts (controllers/port-conflicts.ts)
    await (await import('../port-check.js')).checkHostPorts(ctx.project, observed, names ? { names } : {});
    // `tend up` clears stop intents (design §3), then converges from this same observation
    const { clearStopIntents } = await import('../../../controllers/imperative.js');
    const { converge } = await import('../../../controllers/reconciler.js');
    await clearStopIntents(ctx.project, deps, observed, names);
    const r = await converge(ctx.project, deps, {
      recreate: o.recreate ?? false,
      prune: o.prune ?? false,
      provision: o.provision ?? true,
      ...(names ? { names } : {}),
      observed,
      ...run,
    });
    await recordStatus(ctx, r.vms);
    return {
      ok: r.ok,
      project: ctx.project.name,
      entries: r.entries,
      vms: r.vms,
      warnings: ctx.diagnostics.filter((d) => d.severity === 'warning'),
    };
  });
}

export function renderConverge(r: { ok: boolean; vms: ConvergeCommandResult['vms']; warnings?: Diagnostic[] }): string {
  const lines = Object.entries(r.vms).map(([vm, s]) => renderVmLine(vm, s));
  if (lines.length === 0) lines.push('nothing to do');
  return [...(r.warnings ?? []).map(formatDiagnostic), ...lines].join('\n');
}
