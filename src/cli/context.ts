/**
 * The one place a command turns global options into what it works on: the project files
 * (discovered or -f), the loaded project (or a ValidationError), the state root and the
 * project's state folder, the backend, and the lock options. Commands get a Context and never
 * resolve any of these themselves.
 */
import { resolve } from 'node:path';
import type { Project, SourceLocation } from '../../schemas/model.js';
import type { Backend, Clock, Guest } from '../../controllers/types.js';
import type { ControllerDeps } from '../../controllers/reconciler.js';
import { UsageError, ValidationError } from '../errors.js';
import { didYouMean } from '../load/common.js';
import type { Diagnostic } from '../load/diagnostic.js';
import { discoverProjectFiles, loadProject } from '../load/project.js';
import { projectDir, stateRoot } from '../state/paths.js';
import type { LockOptions } from '../state/lock.js';
import type { Logger } from '../log.js';
import { parseDuration } from './output.js';

/** Options every command accepts (main.ts fills them from the global flags). */
export interface GlobalOptions {
  /** -f FILE, repeatable; none = discover in cwd */
  file?: string[];
  json?: boolean;
  stateDir?: string;
  /** "5m", "30s", ... */
  lockTimeout?: string;
  /** false with --no-wait */
  wait?: boolean;
  verbose?: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  log?: Logger;
  /** live guest output (provisioning, readiness stages), one line at a time */
  onGuestOutput?: (vm: string, line: string, stream: 'stdout' | 'stderr' | 'status') => void;
  /** test seams: use these instead of the QEMU backend, the SSH guest and the wall clock */
  backend?: Backend;
  guest?: Guest;
  clock?: Clock;
}

export interface Loaded {
  files: string[];
  project: Project | null;
  diagnostics: Diagnostic[];
  origins: Record<string, SourceLocation>;
}

export interface Context {
  project: Project;
  /** warnings (errors make loading throw) */
  diagnostics: Diagnostic[];
  origins: Record<string, SourceLocation>;
  stateRoot: string;
  /** this project's state folder */
  projDir: string;
  env: NodeJS.ProcessEnv;
  opts: GlobalOptions;
}

export function projectFiles(g: GlobalOptions): string[] {
  const cwd = g.cwd ?? process.cwd();
  return g.file && g.file.length > 0 ? g.file.map((f) => resolve(cwd, f)) : discoverProjectFiles(cwd);
}

/** Load without throwing on invalid files (validate reports them itself). */
export async function loadFiles(g: GlobalOptions): Promise<Loaded> {
  const files = projectFiles(g);
  const r = await loadProject(files, { env: g.env ?? process.env, cwd: g.cwd ?? process.cwd() });
  return { files, ...r };
}

export function resolveStateRoot(g: GlobalOptions): string {
  const env = g.env ?? process.env;
  return resolve(g.cwd ?? process.cwd(), g.stateDir ?? stateRoot(env));
}

/** Load the project; any error diagnostic throws ValidationError (no VM is touched). */
export async function loadContext(g: GlobalOptions): Promise<Context> {
  const r = await loadFiles(g);
  if (!r.project) throw new ValidationError(r.diagnostics.filter((d) => d.severity === 'error'));
  const root = resolveStateRoot(g);
  return {
    project: r.project,
    diagnostics: r.diagnostics,
    origins: r.origins,
    stateRoot: root,
    projDir: projectDir(root, r.project.name, r.project.dir),
    env: g.env ?? process.env,
    opts: g,
  };
}

/** The backend for this context; imported lazily so read-only commands start fast. */
export async function backendFor(ctx: Context): Promise<Backend> {
  if (ctx.opts.backend) return ctx.opts.backend;
  const { createQemuBackend } = await import('../qemu/backend.js');
  return createQemuBackend({ stateRoot: ctx.stateRoot, env: ctx.env, ...(ctx.opts.log ? { log: ctx.opts.log } : {}) });
}

/**
 * Backend, guest access and clock for the reconciler. The guest module (ssh2) is only loaded
 * when a guest method is first called, so stop/suspend/destroy never load it.
 */
export async function depsFor(ctx: Context): Promise<ControllerDeps> {
  const backend = await backendFor(ctx);
  const clock = ctx.opts.clock ?? (await import('../../controllers/clock.js')).systemClock;
  if (ctx.opts.guest) return { backend, guest: ctx.opts.guest, clock };
  let real: Promise<Guest> | undefined;
  const guest = (): Promise<Guest> =>
    (real ??= import('../ssh/guest.js').then((mod) =>
      mod.createSshGuest({
        stateRoot: ctx.stateRoot,
        env: ctx.env,
        ...(ctx.opts.onGuestOutput ? { onOutput: ctx.opts.onGuestOutput } : {}),
      }),
    ));
  return {
    backend,
    clock,
    guest: {
      waitReady: async (project, vm, signal) => (await guest()).waitReady(project, vm, signal),
      provision: async (project, vm, opts, signal) => (await guest()).provision(project, vm, opts, signal),
      // the layer cache's host-side check: an edited step re-runs even when the step count is unchanged
      provisionPending: async (project, vm, recorded, signal) => (await (await guest()).provisionPending?.(project, vm, recorded, signal)) ?? true,
    },
  };
}

export function lockOptions(ctx: Context, command: string): LockOptions {
  return {
    command: `tend ${command}`,
    timeoutMs: parseDuration(ctx.opts.lockTimeout ?? '5m', '--lock-timeout'),
    wait: ctx.opts.wait ?? true,
  };
}

/** Check that every name is a VM of the project (or one of `extra`, e.g. orphans); UsageError otherwise. */
export function checkVmNames(project: Project, names: string[], extra: string[] = []): void {
  const known = [...project.vms.map((v) => v.name), ...extra];
  for (const n of names) {
    if (known.includes(n)) continue;
    const guess = didYouMean(n, known);
    throw new UsageError(
      `no VM named "${n}" in project "${project.name}"${guess ? `: did you mean "${guess}"?` : `; its VMs are: ${known.join(', ') || '(none)'}`}`,
      'UnknownVm',
    );
  }
}

export function vmSpec(project: Project, name: string): Project['vms'][number] {
  checkVmNames(project, [name]);
  return project.vms.find((v) => v.name === name) as Project['vms'][number];
}
