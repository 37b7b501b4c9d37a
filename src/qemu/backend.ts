/**
 * The QEMU backend: every backend role of schemas/ports.ts (lifecycle, observe, exit-watch,
 * console, volumes) over the state dir, qemu-img, and detached QEMU processes. Every method is
 * idempotent: prepare twice changes nothing the second time, start of a running VM returns what
 * runs, stop of a stopped VM is a no-op. The operations live in prepare.ts, start.ts, stop.ts;
 * what they share in context.ts.
 */
import { rm } from 'node:fs/promises';
import type {
  Clock,
  FullBackend,
  Observed,
  PrepareOptions,
  Snapshots,
  StartResult,
  StopOptions,
  StopResult,
  VolumeObserved,
} from '../../schemas/ports.js';
import { systemClock } from '../state/clock.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { Logger } from '../log.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { FILES, socketPath, vmDir, vmFile, volumePath } from '../state/paths.js';
import { observeProject, type IntentRecord } from './observe.js';
import { attachConsole } from './console.js';
import { qemuExitWatch } from './watch.js';
import { markReady } from './readiness.js';
import { libvirtTemplateScope, maybeKeepTemplate } from './templates.js';
import { listVolumes } from './volumes.js';
import type { StageTimeouts } from '../timeouts.js';
import { abortIf, file, pdir as pdirOf, readApplied, type QemuContext } from './context.js';
import { prepare } from './prepare.js';
import { start } from './start.js';
import { cleanupRuntime, qmpCommand, stop } from './stop.js';
import { saveOrStop } from './save.js';
import { listSnapshots, removeSnapshot, restoreSnapshot, saveSnapshot } from './snapshots.js';

export interface QemuBackendOptions {
  stateRoot: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** default: qemu-system-x86_64 from PATH (of `env`) */
  qemuBinary?: string;
  log?: Logger;
  /** stage time limits from the command's flags (ms); `start` bounds QEMU's start until QMP answers (src/timeouts.ts) */
  timeouts?: StageTimeouts;
  /** grace after SIGTERM before SIGKILL (default 10 s) */
  termGraceMs?: number;
  /** how often exit-watch checks QEMU pids (ms, default 250) */
  exitPollMs?: number;
  /** how long a guest gets to act on ACPI powerdown before tend also asks it over SSH (default 10 s) */
  acpiPatienceMs?: number;
  /** prepare makes no named volume files and no UEFI variable store: they live with the host that runs the VM (remote libvirt) */
  runsElsewhere?: boolean;
  /** the VMs run as libvirt domains of this connection (src/libvirt/backend.ts): their warm templates are libvirt's (template-key.ts) */
  libvirtUri?: string;
}

export function createQemuBackend(opts: QemuBackendOptions): FullBackend & Snapshots {
  const env = opts.env ?? process.env;
  const ctx: QemuContext = {
    stateRoot: opts.stateRoot,
    env,
    clock: opts.clock ?? systemClock,
    binary: opts.qemuBinary ?? 'qemu-system-x86_64',
    log: opts.log,
    timeouts: opts.timeouts,
    termGraceMs: opts.termGraceMs,
    acpiPatienceMs: opts.acpiPatienceMs,
    runsElsewhere: opts.runsElsewhere === true,
    templateScope: opts.libvirtUri !== undefined ? libvirtTemplateScope(opts.libvirtUri) : null,
  };
  const pdir = (p: Project): string => pdirOf(ctx, p);

  return {
    async observe(project: Project, signal?: AbortSignal): Promise<Observed> {
      abortIf(signal);
      return observeProject(pdir(project), env);
    },
    prepare: (project: Project, vm: VmSpec, o: PrepareOptions, signal?: AbortSignal): Promise<void> => prepare(ctx, project, vm, o, signal),
    start: (project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> => start(ctx, project, vm, signal),
    stop: (project: Project, name: string, o: StopOptions, signal?: AbortSignal): Promise<StopResult | void> =>
      o.save ? saveOrStop(ctx, project, name, o, signal) : stop(ctx, project, name, o, signal),
    suspend: (p, n, s) => qmpCommand(ctx, p, n, 'stop', s),
    resume: (p, n, s) => qmpCommand(ctx, p, n, 'cont', s),
    async destroy(project: Project, name: string, signal?: AbortSignal): Promise<void> {
      const applied = await readApplied(ctx, project, name).catch(() => undefined);
      // Its disk is about to be deleted: a clean shutdown matters only for what outlives the VM
      // (named volumes, host folders). Without a record, assume it may have them.
      const keeps = !applied || applied.spec.volumes.length > 0;
      await stop(ctx, project, name, { timeout: keeps ? (applied?.spec.stopGracePeriod ?? 30) : 0 }, signal);
      await cleanupRuntime(ctx, pdir(project), name);
      await rm(vmDir(pdir(project), name), { recursive: true, force: true });
    },
    async setIntent(project: Project, name: string, intent: 'stopped' | null): Promise<void> {
      const p = file(ctx, project, name, 'intent');
      if (intent === null) await rm(p, { force: true });
      else await writeJsonAtomic(p, { intent } satisfies IntentRecord);
    },
    locate(project: Project, name: string): Record<string, string> {
      const pd = pdir(project);
      const paths: Record<string, string> = { dir: vmDir(pd, name) };
      for (const key of Object.keys(FILES) as (keyof typeof FILES)[]) {
        paths[key] = key === 'qmp' || key === 'serial' ? socketPath(pd, name, key, env) : vmFile(pd, name, key);
      }
      return paths;
    },
    listSnapshots: (p, n, s) => listSnapshots(ctx, p, n, s),
    saveSnapshot: (p, n, snap, s) => saveSnapshot(ctx, p, n, snap, s),
    restoreSnapshot: (p, n, snap, s) => restoreSnapshot(ctx, p, n, snap, s),
    removeSnapshot: (p, n, snap, s) => removeSnapshot(ctx, p, n, snap, s),
    watchExit: qemuExitWatch({ stateRoot: opts.stateRoot, env, ...(opts.exitPollMs ? { pollMs: opts.exitPollMs } : {}) }),
    attachConsole: (project, name, io, signal) =>
      attachConsole({ socketPath: socketPath(pdir(project), name, 'serial', env), ...io, ...(signal ? { signal } : {}) }),
    async listVolumes(project: Project, signal?: AbortSignal): Promise<VolumeObserved[]> {
      abortIf(signal);
      return listVolumes(pdir(project));
    },
    volumePath: (project, name) => volumePath(pdir(project), name),
    async markReady(project, name, ready) {
      await markReady(pdir(project), name, ready);
      // the first Ready of a fresh disk of a `warm` VM becomes a warm template (src/qemu/templates.ts)
      if (ready) await maybeKeepTemplate(ctx, project, name);
    },
    async removeVolumes(project: Project, names: string[], signal?: AbortSignal): Promise<void> {
      for (const n of names) {
        abortIf(signal);
        await rm(volumePath(pdir(project), n), { force: true });
      }
    },
  };
}
