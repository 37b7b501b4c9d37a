/**
 * `tend provision [--name VM]...`: run every provision step again on running VMs, ignoring the
 * layer cache (design §5), then record the successes. VMs that are not running are not started
 * for this: naming one is an error, and without names only the running VMs are provisioned.
 */
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { collect, logEvent, type CliCommand } from '../command.js';
import { checkVmNames, type GlobalOptions } from '../context.js';
import type { TendEvent } from '../../../schemas/ports.js';
import { recordStatus, renderConverge, withDeps, type ConvergeCommandResult } from '../session.js';

export interface ProvisionCommandOptions extends GlobalOptions {
  names?: string[];
  onEvent?: (e: TendEvent) => void;
}

export async function provisionCommand(o: ProvisionCommandOptions): Promise<ConvergeCommandResult> {
  const asked = o.names && o.names.length > 0 ? o.names : undefined;
  return withDeps(o, 'provision', async (ctx, deps, run) => {
    if (asked) checkVmNames(ctx.project, asked);
    const observed = await deps.backend.observe(ctx.project, o.signal);
    const running = (n: string): boolean => {
      const p = observed.vms[n]?.power;
      return p === 'running';
    };
    if (asked) {
      const down = asked.filter((n) => !running(n));
      if (down.length > 0) {
        throw new UsageError(
          `${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} not running: \`tend start ${down[0]}\` first (it provisions too)`,
          'VmNotRunning',
        );
      }
    }
    const names = asked ?? ctx.project.vms.filter((v) => v.provision.length > 0 && running(v.name)).map((v) => v.name);
    if (names.length === 0) return { ok: true, project: ctx.project.name, entries: [], vms: {} };
    const { converge } = await import('../../../controllers/reconciler.js');
    const r = await converge(ctx.project, deps, { recreate: false, prune: false, provision: true, forceProvision: true, names, ...run });
    await recordStatus(ctx, r.vms);
    return { ok: r.ok, project: ctx.project.name, entries: r.entries, vms: r.vms };
  });
}

export const command: CliCommand = {
  name: 'provision',
  description: 'run every provision step again on the running VMs (ignores the step cache)',
  examples: ['tend provision', 'tend provision --name web'],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) => c.option('--name <vm>', 'only this VM (repeatable)', collect),
  async run({ g, opts, io }) {
    const o = opts as { name?: string[] };
    const r = await provisionCommand({ ...g, ...(o.name ? { names: o.name } : {}), onEvent: logEvent(g) });
    if (g.json) io.json(r);
    else io.out(renderConverge(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
