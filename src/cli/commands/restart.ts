/** `tend restart NAME...`: stop the VMs and start them again with the current settings (disks kept), side by side. */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, seconds, type CliCommand } from '../command.js';
import {
  recordStatus,
  renderConverge,
  renderVmResult,
  vmResultOk,
  vmsResult,
  withDeps,
  withGrace,
  type VmCommandOptions,
  type VmCommandResult,
} from '../session.js';
import { NAME_FLAG, NAME_FLAG_HELP, vmNames } from '../name-flag.js';

export interface RestartCommandOptions extends VmCommandOptions {
  timeout?: number;
  provision?: boolean;
}

export async function restartCommand(o: RestartCommandOptions): Promise<VmCommandResult> {
  const [r] = await restartVmsCommand({ ...o, names: [o.name] });
  return r!;
}

/** `tend restart web db`: each VM as `tend restart NAME` would, under one lock, side by side. */
export async function restartVmsCommand(o: Omit<RestartCommandOptions, 'name'> & { names: readonly string[] }): Promise<VmCommandResult[]> {
  return withDeps(
    o,
    `restart ${o.names.join(' ')}`,
    async (ctx, deps, run) => {
      const { restartVm } = await import('../../../controllers/imperative.js');
      const results = await Promise.all(
        o.names.map(async (name) => ({
          project: ctx.project.name,
          vm: name,
          ...(await restartVm(withGrace(ctx.project, name, o.timeout), deps, name, { ...run, provision: o.provision ?? true })),
        })),
      );
      await recordStatus(ctx, Object.fromEntries(results.map((r) => [r.vm, r])));
      return results;
    },
    o.names,
  );
}

export const command: CliCommand = {
  name: 'restart',
  description: 'stop VMs, then converge them (start, provision)',
  examples: ['tend restart web', 'tend restart web db'],
  stageTimeouts: true,
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[names...]', 'VM names (several: restarted side by side)')
      .option(NAME_FLAG, NAME_FLAG_HELP)
      .option('--timeout <seconds>', 'ACPI grace period before SIGTERM', seconds),
  async run({ g, args, opts, io }) {
    const o = opts as { timeout?: number; name?: string };
    const rs = await restartVmsCommand({
      ...g,
      names: vmNames('restart', args[0] as string[], o.name),
      onEvent: logEvent(g),
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    });
    // one VM: its result as before; several: each VM's, as `tend up` shows them
    if (rs.length === 1) {
      const r = rs[0]!;
      if (g.json) io.json(r);
      else io.out(renderVmResult(r));
      return vmResultOk(r) ? EXIT.ok : EXIT.failure;
    }
    const all = vmsResult(rs[0]!.project, rs);
    if (g.json) io.json(all);
    else io.out(renderConverge(all));
    return all.ok ? EXIT.ok : EXIT.failure;
  },
};
