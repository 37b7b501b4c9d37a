/**
 * `tend down`: stop every VM of the project (dependents first); `--destroy` deletes them too;
 * `--volumes` (implies --destroy) also deletes named volumes. The next `tend up` starts them again.
 */
import type { ConvergeCommandResult } from './converge.js';
import { recordStatus, withDeps } from './lifecycle.js';
import type { GlobalOptions } from '../context.js';
import type { TendEvent } from '../../../controllers/types.js';

export interface DownCommandOptions extends GlobalOptions {
  destroy?: boolean;
  volumes?: boolean;
  names?: string[];
  onEvent?: (e: TendEvent) => void;
}

export async function downCommand(o: DownCommandOptions): Promise<ConvergeCommandResult> {
  return withDeps(o, 'down', async (ctx, deps, run) => {
    const { downProject } = await import('../../../controllers/reconciler.js');
    const r = await downProject(ctx.project, deps, {
      destroy: Boolean(o.destroy || o.volumes),
      volumes: o.volumes ?? false,
      ...(o.names && o.names.length > 0 ? { names: o.names } : {}),
      ...run,
    });
    await recordStatus(ctx, r.vms);
    return { ok: r.ok, project: ctx.project.name, entries: r.entries, vms: r.vms };
  });
}
