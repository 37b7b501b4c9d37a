/** `tend start NAME`: clear a `tend stop` intent, then converge that VM (and what it depends on). */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { recordStatus, renderConverge, withDeps, type ConvergeCommandResult, type VmCommandOptions } from '../session.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, NAME_FLAG_HELP, vmName, withInstance } from '../name-flag.js';

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

export const command: CliCommand = {
  name: 'start',
  description: 'clear a `tend stop` and converge this VM',
  examples: ['tend start web'],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[name]', 'VM name')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option(INSTANCE_FLAG, INSTANCE_FLAG_HELP)
      .option('--no-provision', 'skip provision steps'),
  async run({ g, args, opts, io }) {
    const o = opts as { provision?: boolean; name?: string; instance?: string };
    const r = await startCommand({
      ...g,
      name: withInstance(vmName('start', args[0] as string | undefined, o.name, true), o.instance),
      provision: o.provision !== false,
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderConverge(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
