/** `tend start NAME...`: clear their `tend stop` intents, then converge those VMs (and what they depend on). */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { recordStatus, renderConverge, withDeps, type ConvergeCommandResult, type VmCommandOptions } from '../session.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, NAME_FLAG_HELP, vmNames, withInstance } from '../name-flag.js';

export interface StartCommandOptions extends Omit<VmCommandOptions, 'name'> {
  /** the VM (or `names`: several, converged together) */
  name?: string;
  names?: readonly string[];
  provision?: boolean;
}

export async function startCommand(o: StartCommandOptions): Promise<ConvergeCommandResult> {
  const names = o.names ?? (o.name !== undefined ? [o.name] : []);
  return withDeps(
    o,
    `start ${names.join(' ')}`,
    async (ctx, deps, run) => {
      const { startVm } = await import('../../../controllers/imperative.js');
      const r = await startVm(ctx.project, deps, names, { ...run, provision: o.provision ?? true });
      await recordStatus(ctx, r.vms);
      return { ok: r.ok, project: ctx.project.name, entries: r.entries, vms: r.vms };
    },
    names,
  );
}

export const command: CliCommand = {
  name: 'start',
  description: 'clear a `tend stop` and converge these VMs',
  examples: ['tend start web', 'tend start web db'],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[names...]', 'VM names (several: converged together, in dependency order)')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option(INSTANCE_FLAG, INSTANCE_FLAG_HELP)
      .option('--no-provision', 'skip provision steps'),
  async run({ g, args, opts, io }) {
    const o = opts as { provision?: boolean; name?: string; instance?: string };
    const r = await startCommand({
      ...g,
      names: vmNames('start', args[0] as string[], o.name).map((n) => withInstance(n, o.instance)),
      provision: o.provision !== false,
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderConverge(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
