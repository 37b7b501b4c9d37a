/** Shared by the imperative one-VM commands: load, check the name, take the lock, build the deps. */
import type { ControllerDeps, RunOptions } from '../../../controllers/reconciler.js';
import type { TendEvent } from '../../../schemas/ports.js';
import { appendEvent } from '../../state/events.js';
import { withProjectLock } from '../../state/lock.js';
import { recordStatus as writeStatus } from '../../state/status.js';
import { depsFor, loadContext, lockOptions, type Context, type GlobalOptions } from '../context.js';

export interface VmCommandOptions extends GlobalOptions {
  name: string;
  onEvent?: (e: TendEvent) => void;
}

/** What a one-VM command reports (the reconciler's VmStatus plus names). */
export interface VmCommandResult {
  project: string;
  vm: string;
  state: string;
  error?: string;
  conditions: string[];
}

/**
 * Run `fn` under the project lock with the controller's deps; events go to the project's
 * events.jsonl and to `onEvent`. Name checks (declared or orphan) are the reconciler's.
 * `vms` (default: the command's one VM, `o.name`) picks the project: a name the working
 * directory's project does not know may be a `tend run` VM (loadContext).
 */
export async function withDeps<T>(
  o: GlobalOptions & { onEvent?: (e: TendEvent) => void; name?: string },
  command: string,
  fn: (ctx: Context, deps: ControllerDeps, run: RunOptions) => Promise<T>,
  vms: string | readonly string[] | undefined = o.name,
): Promise<T> {
  const ctx = await loadContext(o, vms);
  return withProjectLock(ctx.projDir, lockOptions(ctx, command), async () => {
    const deps = await depsFor(ctx);
    const pending: Promise<void>[] = [];
    const run: RunOptions = {
      ...(o.signal ? { signal: o.signal } : {}),
      onEvent: (e) => {
        pending.push(appendEvent(ctx.projDir, e).catch((err: unknown) => ctx.opts.log?.warn({ err }, 'cannot record event')));
        o.onEvent?.(e);
      },
    };
    try {
      return await fn(ctx, deps, run);
    } finally {
      await Promise.all(pending);
    }
  });
}

/** "web: Ready [RecreateRequired]"; conditions that only repeat the error are left out. */
export function renderVmLine(vm: string, s: { state: string; error?: string; conditions: string[] }): string {
  const conditions = s.conditions.filter((c) => !(s.error && c.includes(s.error)));
  return `${vm}: ${s.state}${s.error ? ` — ${s.error}` : ''}${conditions.length ? ` [${conditions.join(', ')}]` : ''}`;
}

export function renderVmResult(r: VmCommandResult): string {
  return renderVmLine(r.vm, r);
}

/** A VM result is a failure when the VM failed or was blocked. */
export function vmResultOk(r: VmCommandResult): boolean {
  return r.state !== 'Failed' && r.state !== 'Blocked' && !r.error;
}

/** Record each VM's last reconcile verdict (status.json, src/state/status.ts). */
export async function recordStatus(
  ctx: Context,
  vms: Record<string, { state: string; error?: string; conditions: string[] }>,
  now = Date.now(),
): Promise<void> {
  await writeStatus(ctx.projDir, vms, now, (vm, err) => ctx.opts.log?.warn({ err, vm }, 'cannot record status'));
}
