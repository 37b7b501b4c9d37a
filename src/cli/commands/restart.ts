/** `tend restart NAME`: stop the VM and start it again with the current settings (disk kept). */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, seconds, type CliCommand } from '../command.js';
import { recordStatus, renderVmResult, vmResultOk, withDeps, withGrace, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { NAME_FLAG, NAME_FLAG_HELP, vmName } from '../name-flag.js';

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

export const command: CliCommand = {
  name: 'restart',
  description: 'stop the VM, then converge it (start, provision)',
  examples: ['tend restart web'],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[name]', 'VM name')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option('--timeout <seconds>', 'ACPI grace period before SIGTERM', seconds),
  async run({ g, args, opts, io }) {
    const o = opts as { timeout?: number };
    const r = await restartCommand({
      ...g,
      name: vmName('restart', args[0] as string | undefined, (opts as { name?: string }).name, true),
      onEvent: logEvent(g),
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    });
    if (g.json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  },
};
