/**
 * The one place a command turns global options into what it works on: the project files
 * (discovered or -f), the loaded project (or a ValidationError), the state root and the
 * project's state folder, the backend, and the lock options. Commands get a Context and never
 * resolve any of these themselves.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Project, type SourceLocation, type VmSpec } from '../../schemas/model.js';
import { NAME_RE } from '../../schemas/names.js';
import type { Backend, Clock, Guest, VmProgress } from '../../schemas/ports.js';
import type { LiveDisplay } from './live.js';
import type { ControllerDeps } from '../../controllers/reconciler.js';
import { UsageError, ValidationError } from '../../schemas/errors.js';
import { didYouMean, unknownVmMessage } from '../../schemas/names.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { discoverProjectFiles, loadProject } from '../load/project.js';
import { projectDir, projectsDir, RUN_FILE, runDir, runsDir, shortHash, vmDir, vmFile, vmsDir } from '../state/paths.js';
import type { LockOptions } from '../state/lock.js';
import type { Logger } from '../log.js';
import { parseDuration } from './output.js';
import { filesOfProjectOption } from './project-option.js';
import { stateRootOf } from './state-root.js';
import { progressIntervalMs } from './progress-interval.js';
import type { StageTimeouts } from '../timeouts.js';
import type { BackendFlags } from '../backend/select.js';
import { addInstance, expandInstances, type InstanceMap, type InstanceOf } from '../load/instances.js';
import { readInstances } from '../state/instances.js';

/** Options every command accepts (main.ts fills them from the global flags). */
export interface GlobalOptions {
  /** -f FILE, repeatable; none = -p, else discover in cwd or the nearest folder above it */
  file?: string[];
  /** -p PROJECT: a project folder or file, or a project's name (src/cli/project-option.ts) */
  project?: string;
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
  /** readiness stage time limits from flags (--ssh-timeout, ...), in ms */
  timeouts?: StageTimeouts;
  /** live guest output (provisioning, readiness stages), one line at a time */
  onGuestOutput?: (vm: string, line: string, stream: 'stdout' | 'stderr' | 'status' | 'warning') => void;
  /** what each VM's long step is doing now (downloads, disk creation), for the live display */
  onVmProgress?: (p: VmProgress) => void;
  /** a message for the user on stderr, for commands without a logger (main.ts) */
  onNote?: (message: string) => void;
  /** the live display of the command (src/cli/live.ts), when it has one */
  display?: LiveDisplay;
  /**
   * The command needs names and state, not the files' content (down, stop, destroy, ps, status,
   * logs): when the project files have errors, act on the VMs tend knows from its state dir
   * (their applied specs) instead of refusing; the errors are kept as warnings.
   */
  fromState?: boolean;
  /** --backend / --connect: which backend runs the VMs (src/backend/select.ts) */
  backendFlags?: BackendFlags;
  /** `tend up --warm`: the project-wide default of `warm` (a VM's own `warm` wins; docs/warm.md) */
  warm?: boolean;
  /**
   * `tend up -i NAME`: create the named instance NAME of `vms` (all declared VMs when none);
   * the command records it (src/state/instances.ts). Other verbs' `-i` only picks VM names.
   */
  createInstance?: { name: string; vms?: string[] };
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
  /** per VM: settings inferred rather than read (plan shows them) */
  notes: Record<string, string[]>;
  /** the project's name and directory as far as the files tell them (also when invalid) */
  name: string;
  dir: string;
}

export interface Context {
  project: Project;
  /** warnings (errors make loading throw) */
  diagnostics: Diagnostic[];
  origins: Record<string, SourceLocation>;
  /** per VM: settings inferred rather than read (plan shows them) */
  notes: Record<string, string[]>;
  stateRoot: string;
  /** this project's state folder */
  projDir: string;
  env: NodeJS.ProcessEnv;
  /** the options the project was loaded with (for a run VM: with `file` set to its tend.yaml) */
  opts: GlobalOptions;
  /** true when the files have errors and the project is what the state dir knows (GlobalOptions.fromState) */
  fromState?: boolean;
  /** set when the VM named on the command line was found as a `tend run` VM (see loadContext) */
  run?: { name: string; dir: string; file: string };
  /** named instances in the project (src/load/instances.ts): VM name → its declared VM and instance */
  instances: Record<string, InstanceOf>;
  /** the instances to record: those recorded plus `createInstance` */
  instanceMap: InstanceMap;
}

/** The one place the project files are found: -f, else -p, else the working directory or the nearest folder above it. */
export function projectFiles(g: GlobalOptions): string[] {
  const cwd = g.cwd ?? process.cwd();
  if (g.file && g.file.length > 0) return g.file.map((f) => resolve(cwd, f));
  if (g.project !== undefined) return filesOfProjectOption(g.project, cwd, resolveStateRoot(g));
  return discoverProjectFiles(cwd);
}

/** Load without throwing on invalid files (validate reports them itself). */
export async function loadFiles(g: GlobalOptions): Promise<Loaded> {
  const files = projectFiles(g);
  const r = await loadProject(files, {
    env: g.env ?? process.env,
    cwd: g.cwd ?? process.cwd(),
    ...(g.warm !== undefined ? { warm: g.warm } : {}),
  });
  return { files, ...r };
}

export function resolveStateRoot(g: GlobalOptions): string {
  return stateRootOf(g);
}

/** What the one-VM commands tell loadContext about the names on their command line. */
export interface VmLookup {
  /**
   * ssh's rule for a word that is neither a VM of the project nor a run VM but may start a
   * command (`tend ssh -- uptime` in a one-VM project): true keeps the project instead of failing.
   */
  keepProject?: (project: Project) => boolean;
}

/**
 * Load the project; any error diagnostic throws ValidationError (no VM is touched).
 *
 * `vms` are the VM names the command was given. Without -f, a name the project in the working
 * directory does not know (neither declared nor an orphan with a state folder), or any name when
 * there is no project file there, is looked up among the `tend run` VMs: when
 * `<state>/run/<name>/tend.yaml` exists, that file is the project (`ctx.run` says so). A
 * project VM always wins over a run VM of the same name. Nothing found: UsageError listing both.
 */
export async function loadContext(g: GlobalOptions, vms?: string | readonly string[], lookup: VmLookup = {}): Promise<Context> {
  const names = vms === undefined ? [] : typeof vms === 'string' ? [vms] : [...vms];
  const root = resolveStateRoot(g);
  if (names.length === 0 || (g.file && g.file.length > 0) || g.project !== undefined) return contextOf(g, await loadFiles(g), root);
  const cwd = g.cwd ?? process.cwd();
  let here: Context | null = null;
  try {
    here = contextOf(g, await loadFiles(g), root);
  } catch (e) {
    if (!(e instanceof UsageError && e.reason === 'NoProjectFile')) throw e;
  }
  const unknown = here ? names.filter((n) => !knowsVm(here, n)) : names;
  if (here && unknown.length === 0) return here;
  const isRunVm = (n: string): boolean => NAME_RE.test(n) && existsSync(join(runDir(root, n), RUN_FILE));
  const notRun = unknown.find((n) => !isRunVm(n));
  if (notRun !== undefined) {
    // the command's own meaning for the word (ssh: a command), else the error
    if (here && lookup.keepProject?.(here.project)) return here;
    throw unknownVm(notRun, here?.project ?? null, cwd, runVmNames(root));
  }
  const first = unknown[0];
  const file = join(runDir(root, first), RUN_FILE);
  if (names.length > 1) {
    throw new UsageError(
      `${first} is a \`tend run\` VM (a project of its own): name it alone, e.g. \`tend down ${first}\``,
      'MixedProjects',
    );
  }
  const ctx = contextOf({ ...g, file: [file] }, await loadFiles({ ...g, file: [file] }), root);
  if (!ctx.project.vms.some((v) => v.name === first)) {
    throw new UsageError(`${file} does not declare VM "${first}" (was it edited?): fix it, or remove ${runDir(root, first)}`, 'UnknownVm');
  }
  return { ...ctx, run: { name: first, dir: runDir(root, first), file } };
}

function contextOf(g: GlobalOptions, r: Loaded, root: string): Context {
  if (!r.project) {
    const known = g.fromState ? projectFromState(root, r) : null;
    if (!known) throw new ValidationError(r.diagnostics.filter((d) => d.severity === 'error'));
    return {
      project: known,
      diagnostics: r.diagnostics.map((d) => ({ ...d, severity: 'warning' as const })),
      origins: {},
      notes: {},
      stateRoot: root,
      projDir: projectDir(root, known.name, known.dir),
      env: g.env ?? process.env,
      opts: g,
      fromState: true,
      instances: {},
      instanceMap: {},
    };
  }
  const projDir = projectDir(root, r.project.name, r.project.dir);
  const { project, origins, instances, instanceMap } = withInstances(r.project, r.origins, projDir, g.createInstance);
  return {
    project,
    diagnostics: r.diagnostics,
    origins,
    notes: r.notes,
    stateRoot: root,
    projDir,
    env: g.env ?? process.env,
    opts: g,
    instances,
    instanceMap,
  };
}

/**
 * The loaded project with the named instances recorded in its state folder (and the one this
 * command creates) expanded into VMs. A corrupt record reads as none: the instances' folders are
 * then orphans (reported, never deleted by converge), not lost.
 */
export function withInstances(
  loaded: Project,
  origins: Record<string, SourceLocation>,
  projDir: string,
  create?: { name: string; vms?: string[] },
): { project: Project; origins: Record<string, SourceLocation>; instances: Record<string, InstanceOf>; instanceMap: InstanceMap } {
  const recorded = readInstances(projDir, () => undefined);
  const instanceMap = create ? addInstance(loaded, recorded, create.name, create.vms) : recorded;
  return { ...expandInstances(loaded, origins, instanceMap), instanceMap };
}

/**
 * The project as tend's state dir knows it: each VM folder's applied spec (what it was last
 * started with). Null when tend has no folder for this project (nothing to act on).
 */
function projectFromState(root: string, r: Loaded): Project | null {
  let name = r.name;
  if (!existsSync(projectDir(root, name, r.dir))) {
    // the name could not be read (a file that no longer parses): the state folder of this
    // directory is the one whose name ends in the directory's hash (see projectDir)
    const suffix = `-${shortHash(r.dir)}`;
    let mine: string[] = [];
    try {
      mine = readdirSync(projectsDir(root)).filter((e) => e.endsWith(suffix));
    } catch {
      return null;
    }
    if (mine.length !== 1) return null;
    name = mine[0].slice(0, -suffix.length);
  }
  const projDir = projectDir(root, name, r.dir);
  let names: string[];
  try {
    names = readdirSync(vmsDir(projDir), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return null;
  }
  const vms: VmSpec[] = [];
  for (const name of names.sort()) {
    try {
      const rec = JSON.parse(readFileSync(vmFile(projDir, name, 'applied'), 'utf8')) as { spec?: VmSpec };
      if (rec.spec && rec.spec.name === name) vms.push(rec.spec);
    } catch {
      // never started (or a corrupt record): the backend still observes its folder
    }
  }
  return { name, dir: r.dir, files: r.files, vms, volumes: {} };
}

/** Declared, or an orphan tend still has a folder for (what the one-VM commands accept). */
function knowsVm(ctx: Context, name: string): boolean {
  return ctx.project.vms.some((v) => v.name === name) || (NAME_RE.test(name) && existsSync(vmDir(ctx.projDir, name)));
}

/** The names of the `tend run` VMs under this state root (folders holding a project file), sorted. */
export function runVmNames(root: string): string[] {
  try {
    return readdirSync(runsDir(root), { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(runsDir(root), e.name, RUN_FILE)))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

function unknownVm(name: string, project: Project | null, cwd: string, runs: string[]): UsageError {
  const declared = project ? project.vms.map((v) => v.name) : [];
  const guess = didYouMean(name, [...declared, ...runs]);
  const hint = guess ? `: did you mean "${guess}"?` : '';
  const runList = `run VMs: ${runs.join(', ') || 'none'}`;
  if (!project) {
    return new UsageError(
      `no VM named "${name}"${hint} (no project file in ${cwd}: tend.yaml, holos.yaml, VMFile.kdl, vms.yml, or pass -f FILE; ${runList})`,
      'NoProjectFile',
    );
  }
  return new UsageError(
    `no VM named "${name}" in project "${project.name}"${hint} (its VMs: ${declared.join(', ') || 'none'}; ${runList})`,
    'UnknownVm',
  );
}

/** Backend settings only some commands have (watch: how often exit-watch checks pids). */
export interface BackendTuning {
  exitPollMs?: number;
}

/**
 * The backend for this context: the per-VM dispatcher (src/backend/dispatch.ts) over the QEMU
 * backend and a libvirt backend per connection URI. Imported lazily so read-only commands start fast.
 */
export async function backendFor(ctx: Context, tuning: BackendTuning = {}): Promise<Backend> {
  if (ctx.opts.backend) return ctx.opts.backend;
  const [{ createQemuBackend }, { createDispatcher }, { createLibvirtBackend }] = await Promise.all([
    import('../qemu/backend.js'),
    import('../backend/dispatch.js'),
    import('../libvirt/backend.js'),
  ]);
  const common = {
    stateRoot: ctx.stateRoot,
    env: ctx.env,
    ...(ctx.opts.log ? { log: ctx.opts.log } : {}),
    ...(ctx.opts.timeouts ? { timeouts: ctx.opts.timeouts } : {}),
  };
  return createDispatcher({
    ...common,
    ...(ctx.opts.backendFlags ? { flags: ctx.opts.backendFlags } : {}),
    qemu: createQemuBackend({ ...common, ...tuning }),
    libvirt: (uri) => createLibvirtBackend({ ...common, ...tuning, uri }),
  });
}

/**
 * Backend, guest access and clock for the reconciler. The guest module (ssh2) is only loaded
 * when a guest method is first called, so stop/suspend/destroy never load it.
 */
export async function depsFor(ctx: Context, tuning: BackendTuning = {}): Promise<ControllerDeps> {
  const backend = await backendFor(ctx, tuning);
  const clock = ctx.opts.clock ?? (await import('../state/clock.js')).systemClock;
  if (ctx.opts.guest) return { backend, guest: ctx.opts.guest, clock };
  let real: Promise<Guest> | undefined;
  const guest = (): Promise<Guest> =>
    (real ??= import('../ssh/guest.js').then((mod) =>
      mod.createSshGuest({
        stateRoot: ctx.stateRoot,
        env: ctx.env,
        ...(ctx.opts.timeouts ? { timeouts: ctx.opts.timeouts } : {}),
        ...(ctx.opts.onGuestOutput ? { onOutput: ctx.opts.onGuestOutput } : {}),
      }),
    ));
  return {
    backend,
    clock,
    guest: {
      waitReady: async (project, vm, signal, o) => (await guest()).waitReady(project, vm, signal, o),
      provision: async (project, vm, opts, signal) => (await guest()).provision(project, vm, opts, signal),
      // the layer cache's host-side check: an edited step re-runs even when the step count is unchanged
      provisionPending: async (project, vm, recorded, signal) =>
        (await (await guest()).provisionPending?.(project, vm, recorded, signal)) ?? true,
    },
  };
}

export function lockOptions(ctx: Context, command: string): LockOptions {
  return {
    command: `tend ${command}`,
    timeoutMs: parseDuration(ctx.opts.lockTimeout ?? '5m', '--lock-timeout'),
    wait: ctx.opts.wait ?? true,
    onNote: (message) => ctx.opts.log?.warn(message),
    // said at once and then every 10 s while waiting: who holds the lock, how long tend still waits
    onWait: (message) => (ctx.opts.log ? ctx.opts.log.warn(message) : ctx.opts.onNote?.(message)),
    waitNoteMs: progressIntervalMs(ctx.env),
  };
}

/** Check that every name is a VM of the project (or one of `extra`, e.g. orphans); UsageError otherwise. */
export function checkVmNames(project: Project, names: string[], extra: string[] = []): void {
  const known = [...project.vms.map((v) => v.name), ...extra];
  for (const n of names) if (!known.includes(n)) throw new UsageError(unknownVmMessage(n, project.name, known), 'UnknownVm');
}

export function vmSpec(project: Project, name: string): Project['vms'][number] {
  checkVmNames(project, [name]);
  return project.vms.find((v) => v.name === name) as Project['vms'][number];
}

/** The VM a one-VM command means: the one named, else the project's only VM. */
export function inferVm(project: Project, name: string | undefined, command: string): string {
  if (name) return vmSpec(project, name).name;
  if (project.vms.length === 1) return project.vms[0].name;
  const names = project.vms.map((v) => v.name).join(', ') || '(none)';
  throw new UsageError(`name the VM: \`tend ${command} NAME\` (this project has ${names})`, 'VmNameRequired');
}
