/**
 * A mutating command's session: load the project, take the project lock, build the controller's
 * deps, record events (events.jsonl) and verdicts (status.json). Shared by converge, down, start,
 * stop, restart, suspend, resume, destroy, provision, run.
 */
import type { PlanEntry } from '../../controllers/plan.js';
import type { ControllerDeps, RunOptions } from '../../controllers/reconciler.js';
import type { Project } from '../../schemas/model.js';
import type { TendEvent } from '../../schemas/ports.js';
import { formatDiagnostic, type Diagnostic } from '../../schemas/diagnostic.js';
import { appendEvent } from '../state/events.js';
import { withProjectLock } from '../state/lock.js';
import { recordProject } from '../state/project-record.js';
import { recordStatus as writeStatus } from '../state/status.js';
import { EXIT } from '../../schemas/errors.js';
import type { CliIo } from './command.js';
import { depsFor, loadContext, lockOptions, type Context, type GlobalOptions } from './context.js';

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
 * A one-VM verb given several names (`tend stop web db`): `act` on each VM side by side, under
 * one lock, and each VM's result recorded as the one-name command records it.
 */
export async function withEachVm(
  o: GlobalOptions & { onEvent?: (e: TendEvent) => void; fromState?: boolean },
  verb: string,
  names: readonly string[],
  act: (ctx: Context, deps: ControllerDeps, run: RunOptions, name: string) => Promise<Omit<VmCommandResult, 'project' | 'vm'>>,
): Promise<VmCommandResult[]> {
  return withDeps(
    o,
    `${verb} ${names.join(' ')}`,
    async (ctx, deps, run) => {
      const results = await Promise.all(
        names.map(async (name) => ({ project: ctx.project.name, vm: name, ...(await act(ctx, deps, run, name)) })),
      );
      await recordStatus(ctx, Object.fromEntries(results.map((r) => [r.vm, r])));
      return results;
    },
    names,
  );
}

/** One VM: its result as the one-name command always printed it; several: each VM's, as `tend up` shows them. */
export function printVmResults(json: boolean | undefined, io: Pick<CliIo, 'json' | 'out'>, rs: readonly VmCommandResult[]): number {
  if (rs.length === 1) {
    const r = rs[0]!;
    if (json) io.json(r);
    else io.out(renderVmResult(r));
    return vmResultOk(r) ? EXIT.ok : EXIT.failure;
  }
  const all = vmsResult(rs[0]!.project, rs);
  if (json) io.json(all);
  else io.out(renderConverge(all));
  return all.ok ? EXIT.ok : EXIT.failure;
}

/** What a one-VM command reports when given several (`tend stop web db`): each VM's result. */
export interface VmsCommandResult {
  ok: boolean;
  project: string;
  vms: Record<string, { state: string; error?: string; conditions: string[] }>;
}

/** Several one-VM results as one: ok when each is (vmResultOk). */
export function vmsResult(project: string, results: readonly VmCommandResult[]): VmsCommandResult {
  return {
    ok: results.every(vmResultOk),
    project,
    vms: Object.fromEntries(
      results.map(({ vm, state, error, conditions }) => [vm, { state, conditions, ...(error !== undefined ? { error } : {}) }]),
    ),
  };
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
    // the host-wide index `tend ls` and `-p NAME` read (src/state/project-record.ts)
    await recordProject(ctx.projDir, ctx.project).catch((err: unknown) =>
      ctx.opts.log?.warn({ err }, 'cannot record the project (tend ls)'),
    );
    const deps = await depsFor(ctx);
    const pending: Promise<void>[] = [];
    const run: RunOptions = {
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onVmProgress ? { onProgress: o.onVmProgress } : {}),
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

/** What converge-like commands report (converge, down, start, provision, run). */
export interface ConvergeCommandResult {
  ok: boolean;
  project: string;
  entries: PlanEntry[];
  vms: Record<string, { state: string; error?: string; conditions: string[] }>;
  /** the project files' warnings (converge/up) */
  warnings?: Diagnostic[];
}

export function renderConverge(r: { ok: boolean; vms: ConvergeCommandResult['vms']; warnings?: Diagnostic[] }): string {
  const lines = Object.entries(r.vms).map(([vm, s]) => renderVmLine(vm, s));
  if (lines.length === 0) lines.push('nothing to do');
  return [...(r.warnings ?? []).map(formatDiagnostic), ...lines].join('\n');
}

/** The project with one VM's grace period replaced (how stop/restart --timeout reach the backend). */
export function withGrace(project: Project, name: string, timeout: number | undefined): Project {
  if (timeout === undefined) return project;
  return { ...project, vms: project.vms.map((v) => (v.name === name ? { ...v, stopGracePeriod: timeout } : v)) };
}
