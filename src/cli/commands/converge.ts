/**
 * `tend converge` (alias `tend up`): make every declared VM (or the named ones) real, then exit.
 * An explicit converge clears `tend stop` intents of the VMs it targets (design §3): that is
 * how `tend up` undoes `tend stop` and `tend down`.
 */
import type { TendEvent } from '../../../schemas/ports.js';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { collect, logEvent, type CliCommand } from '../command.js';
import { checkVmNames, type GlobalOptions } from '../context.js';
import { INSTANCE_FLAG } from '../name-flag.js';
import { instanceNameProblem, instanceTargets } from '../../load/instances.js';
import { writeInstances } from '../../state/instances.js';
import { recordStatus, renderConverge, withDeps, type ConvergeCommandResult } from '../session.js';

export interface ConvergeCommandOptions extends GlobalOptions {
  names?: string[];
  /** `-i NAME`: create (and converge) the named instance NAME of `names` (all VMs when none) */
  instance?: string;
  recreate?: boolean;
  prune?: boolean;
  /** false with --no-provision */
  provision?: boolean;
  onEvent?: (e: TendEvent) => void;
}

export async function convergeCommand(o: ConvergeCommandOptions, commandName = 'converge'): Promise<ConvergeCommandResult> {
  const given = o.names && o.names.length > 0 ? o.names : undefined;
  // `tend up -i NAME`: the named instance of the given VMs (all when none), recorded once the lock is held
  const inst = o.instance;
  const why = inst !== undefined ? instanceNameProblem(inst) : null;
  if (why) throw new UsageError(why, 'BadInstance');
  const g: GlobalOptions = inst ? { ...o, createInstance: { name: inst, ...(given ? { vms: given } : {}) } } : o;
  return withDeps(g, commandName, async (ctx, deps, run) => {
    if (given && inst) checkVmNames(ctx.project, given);
    const names = inst ? instanceTargets(ctx.project, ctx.instances, inst, given) : given;
    if (inst) await writeInstances(ctx.projDir, ctx.instanceMap);
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

export const command: CliCommand = {
  name: 'converge',
  aliases: ['up'],
  description: 'make every declared VM real (create, start, restart, provision), then exit',
  examples: [
    'tend up',
    'tend converge --name web --no-provision',
    'tend up --recreate --prune',
    'tend up --name arch -i prod',
    'tend up --warm',
  ],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) =>
    c
      .option('--name <vm>', 'only this VM (and what it depends on); repeatable', collect)
      .option(INSTANCE_FLAG, 'create and converge the named instance NAME of the VMs (--name, else all): VMs <vm>-NAME (ov -i)')
      .option('--no-provision', 'skip provision steps')
      .option('--recreate', 'replace disks where the image changed or the disk shrank')
      .option('--prune', 'stop and delete VMs no longer declared')
      .option('--warm', 'warm VMs unless a VM sets warm itself: keep a template once Ready, start new VMs from one (docs/warm.md)')
      .option('-d, --detach', 'accepted for compose habits: `tend up` always returns once converged; the VMs keep running'),
  async run({ g, opts, io }) {
    const o = opts as {
      name?: string[];
      provision?: boolean;
      recreate?: boolean;
      prune?: boolean;
      detach?: boolean;
      instance?: string;
      warm?: boolean;
    };
    if (o.detach && !g.json) io.err('tend: -d is not needed: `tend up` returns once the VMs are converged, and they keep running');
    const r = await convergeCommand({
      ...g,
      ...(o.name ? { names: o.name } : {}),
      ...(o.instance !== undefined ? { instance: o.instance } : {}),
      provision: o.provision !== false,
      recreate: o.recreate ?? false,
      prune: o.prune ?? false,
      ...(o.warm ? { warm: true } : {}),
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderConverge(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
