/** `tend destroy NAME`: stop the VM and delete its folder (disk, seed, keys); named volumes are kept. */
import { EXIT } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { forgetInstances } from '../../state/instances.js';
import { renderVmResult, vmResultOk, withDeps, type VmCommandOptions, type VmCommandResult } from '../session.js';
import { INSTANCE_FLAG, INSTANCE_FLAG_HELP, NAME_FLAG, NAME_FLAG_HELP, vmName, withInstance } from '../name-flag.js';

export async function destroyCommand(o: VmCommandOptions): Promise<VmCommandResult> {
  return withDeps({ ...o, fromState: true }, `destroy ${o.name}`, async (ctx, deps, run) => {
    const { destroyVm } = await import('../../../controllers/imperative.js');
    const r = await destroyVm(ctx.project, deps, o.name, run);
    // a destroyed named instance is no longer recorded (src/state/instances.ts)
    const out = { project: ctx.project.name, vm: o.name, ...r };
    if (vmResultOk(out)) await forgetInstances(ctx.projDir, [o.name]);
    return out;
  });
}

export const command: CliCommand = {
  name: 'destroy',
  description: 'stop the VM and delete its disk, seed and keys (named volumes are kept)',
  examples: ['tend destroy web'],
  log: true,
  configure: (c) => c.argument('[name]', 'VM name').option(NAME_FLAG, NAME_FLAG_HELP).option(INSTANCE_FLAG, INSTANCE_FLAG_HELP),
  async run({ g, args, opts, io }) {
    const r = await destroyCommand({
      ...g,
      name: withInstance(
        vmName('destroy', args[0] as string | undefined, (opts as { name?: string }).name, true),
        (opts as { instance?: string }).instance,
      ),
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  },
};
