/**
 * `tend down`: stop every VM of the project (dependents first); `--destroy` deletes them too;
 * `--volumes` (implies --destroy) also deletes named volumes. Each VM keeps a stop intent, so a
 * running `tend watch` leaves them down; the next `tend up` (or `tend start NAME`) brings them back.
 * `tend down NAME...` only those VMs; a NAME may be a `tend run` VM (see loadContext), whose run
 * folder `--destroy` removes as well.
 */
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { collect, logEvent, type CliCommand } from '../command.js';
import { recordStatus, renderConverge, withDeps, type ConvergeCommandResult } from '../session.js';
import type { Context, GlobalOptions } from '../context.js';
import { runsDir } from '../../state/paths.js';
import type { TendEvent } from '../../../schemas/ports.js';
import { INSTANCE_FLAG, NAME_FLAG, withInstance } from '../name-flag.js';
import { instanceTargets } from '../../load/instances.js';
import { forgetInstances } from '../../state/instances.js';

export interface DownCommandOptions extends GlobalOptions {
  destroy?: boolean;
  volumes?: boolean;
  names?: string[];
  /** `-i NAME`: the named instance NAME of `names` (of every VM that has one when none) */
  instance?: string;
  onEvent?: (e: TendEvent) => void;
}

/** The project is a `tend run` VM's synthesized file (`<state>/run/NAME/tend.yaml`), however it was reached. */
const isRunProject = (ctx: Context): boolean => dirname(ctx.project.dir) === runsDir(ctx.stateRoot);

export async function downCommand(o: DownCommandOptions): Promise<ConvergeCommandResult> {
  const destroy = Boolean(o.destroy || o.volumes);
  let runFolder: string | undefined;
  const result = await withDeps(
    { ...o, fromState: true },
    'down',
    async (ctx, deps, run) => {
      const { downProject } = await import('../../../controllers/imperative.js');
      const names = o.instance !== undefined ? instanceTargets(ctx.project, ctx.instances, o.instance, o.names) : o.names;
      if (o.instance !== undefined && names?.length === 0)
        throw new UsageError(`no instance ${o.instance} in project ${ctx.project.name}`, 'UnknownVm');
      const r = await downProject(ctx.project, deps, {
        destroy,
        volumes: o.volumes ?? false,
        ...(names && names.length > 0 ? { names } : {}),
        // a destroyed `tend run` VM goes away with its file (also `run --rm`, which uses -f): nothing to keep down
        intent: !(destroy && isRunProject(ctx)),
        ...run,
      });
      await recordStatus(ctx, r.vms);
      // destroyed instances are no longer recorded (the next `tend up` does not bring them back)
      if (destroy && r.ok) await forgetInstances(ctx.projDir, names && names.length > 0 ? names : ctx.project.vms.map((v) => v.name));
      runFolder = ctx.run?.dir;
      // files with errors: what tend knows from its state was acted on; say why
      const warnings = ctx.fromState ? ctx.diagnostics : [];
      return { ok: r.ok, project: ctx.project.name, entries: r.entries, vms: r.vms, ...(warnings.length ? { warnings } : {}) };
    },
    o.instance !== undefined && o.names ? o.names.map((n) => withInstance(n, o.instance)) : o.names,
  );
  // a `tend run` VM reached by name and destroyed: its run folder goes too, as with `run --rm`
  // (after the lock is released: the lock file lives in the project's state folder, not here)
  if (runFolder && destroy && result.ok) await rm(runFolder, { recursive: true, force: true });
  return result;
}

export const command: CliCommand = {
  name: 'down',
  description: 'stop every VM of the project, dependents first (`tend up` starts them again)',
  examples: ['tend down', 'tend down --destroy --volumes', 'tend down debian-12-3f2a --destroy'],
  log: true,
  live: true,
  configure: (c) =>
    c
      .argument('[names...]', 'only these VMs (a `tend run` VM by its name: docs/cli.md)')
      .option('--destroy', "also delete the VMs (disks, seeds, keys; a `tend run` VM's folder too)")
      .option('--volumes', 'also delete named volumes (implies --destroy)')
      .option(NAME_FLAG, 'only this VM, as a NAME argument (vmctl spelling); repeatable', collect)
      .option(INSTANCE_FLAG, 'only the named instance NAME of these VMs (of every VM when none): <vm>-NAME (ov -i)'),
  async run({ g, args, opts, io }) {
    const o = opts as { destroy?: boolean; volumes?: boolean; name?: string[]; instance?: string };
    const names = [...new Set([...(args[0] as string[]), ...(o.name ?? [])])];
    const r = await downCommand({
      ...g,
      ...(names.length > 0 ? { names } : {}),
      ...(o.instance !== undefined ? { instance: o.instance } : {}),
      destroy: o.destroy ?? false,
      volumes: o.volumes ?? false,
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderConverge(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
