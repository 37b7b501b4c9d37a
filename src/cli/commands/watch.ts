/**
 * `tend watch`: converge, then stay in the foreground reconciling on every save (of the project
 * files and every file they reference), every VM exit, every SIGHUP and a periodic resync.
 * The loop itself is policy (controllers/watch-loop.ts); this wires it to the mechanisms: the
 * controller lock (one watch per project), the project lock taken pass by pass, chokidar, the
 * QEMU exit watcher, the events file. It resolves when `signal` aborts (SIGINT/SIGTERM), leaving
 * the VMs running and no lock behind.
 */
import { setMaxListeners } from 'node:events';
import { open, stat } from 'node:fs/promises';
import type { Project } from '../../../schemas/model.js';
import { tendEvent, type Clock, type TendEvent } from '../../../schemas/ports.js';
import type { PassReport, WatchController } from '../../../controllers/watch-loop.js';
import type { BackoffOptions } from '../../../controllers/restart-policy.js';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { loadProject } from '../../load/project.js';
import { appendEvent, eventsPath } from '../../state/events.js';
import { acquireProjectLock } from '../../state/lock.js';
import { acquireControllerLock } from '../../watch/controller-lock.js';
import { recordProject } from '../../state/project-record.js';
import { depsFor, loadContext, lockOptions, withInstances, type GlobalOptions } from '../context.js';
import { parseDuration } from '../output.js';
import { recordStatus } from '../session.js';
import type { CliCommand } from '../command.js';

export interface WatchCommandOptions extends GlobalOptions {
  /** periodic resync ("30s"); "0" disables it */
  resync?: string;
  /** quiet time after a file event ("50ms") */
  debounce?: string;
  prune?: boolean;
  recreate?: boolean;
  /** false with --no-provision */
  provision?: boolean;
  onEvent?: (e: TendEvent) => void;
  /** SIGHUP: the CLI subscribes `reload` to the signal; returns the unsubscribe function */
  subscribeReload?: (reload: () => void) => () => void;
  /** called once watching (tests, bench) */
  onReady?: (ctl: WatchController) => void;
  onPass?: (p: PassReport) => void;
  /** crash-loop backoff (tests) */
  backoff?: BackoffOptions;
  /** how often the exit watcher checks QEMU pids (ms, default 250) */
  exitPollMs?: number;
}

export interface WatchSummary {
  project: string;
  /** passes that ran converge */
  passes: number;
}

/** Watch until `o.signal` aborts. Throws ValidationError (invalid files at start) or LockError (watched already). */
export async function watchCommand(o: WatchCommandOptions): Promise<WatchSummary> {
  const signal = o.signal;
  if (!signal) throw new UsageError('tend watch needs an abort signal to know when to stop', 'NoSignal');
  // every VM actor of a pass waits on this signal at once (20 VMs: 20 listeners, all removed after)
  setMaxListeners(1000, signal);
  const resyncMs = parseDuration(o.resync ?? '30s', '--resync');
  const debounceMs = parseDuration(o.debounce ?? '50ms', '--debounce');
  const ctx = await loadContext(o);
  const files = ctx.project.files;
  const releaseController = await acquireControllerLock(ctx.projDir);
  await recordProject(ctx.projDir, ctx.project).catch((err: unknown) => o.log?.warn({ err }, 'cannot record the project (tend ls)'));
  const cleanups: (() => void | Promise<void>)[] = [];
  let passes = 0;
  try {
    const deps = await depsFor(ctx, o.exitPollMs ? { exitPollMs: o.exitPollMs } : {});
    // the libvirt backends' event streams end with the watch
    cleanups.push(() => (deps.backend as { close?: () => void }).close?.());
    const pendingWrites = new Set<Promise<void>>();
    const track = (p: Promise<void>): void => {
      const t = p.catch((err: unknown) => o.log?.warn({ err }, 'cannot record')).finally(() => pendingWrites.delete(t));
      pendingWrites.add(t);
    };
    cleanups.push(async () => {
      await Promise.all([...pendingWrites]);
    });
    const onEvent = (e: TendEvent): void => {
      track(appendEvent(ctx.projDir, e));
      o.onEvent?.(e);
    };
    // lock waits end with the watch (SIGTERM must not wait out --lock-timeout)
    const lockClock: Clock = { now: () => deps.clock.now(), sleep: (ms) => deps.clock.sleep(ms, signal) };
    const { watchFiles } = await import('../../watch/files.js');
    const ref: { ctl?: WatchController } = {};
    const fw = watchFiles(files, {
      onChange: (paths) => ref.ctl?.filesChanged(paths),
      onError: (err) => onEvent(tendEvent(deps.clock.now(), 'Warning', 'WatchError', undefined, `file watching: ${err.message}`)),
    });
    cleanups.push(() => fw.close());
    const { startWatch } = await import('../../../controllers/watch-loop.js');
    const loop = startWatch(
      ctx.project,
      {
        ...deps,
        load: async () => {
          const r = await loadProject(files, {
            env: ctx.env,
            cwd: ctx.opts.cwd ?? process.cwd(),
            ...(o.warm !== undefined ? { warm: o.warm } : {}),
          });
          if (r.project && !sameProject(ctx.project, r.project)) return { project: null, diagnostics: renamed(ctx.project, r.project) };
          // named instances (`tend up -i NAME`) are VMs of the project as long as they are recorded
          const project = r.project ? withInstances(r.project, r.origins, ctx.projDir).project : null;
          return { project, diagnostics: r.diagnostics };
        },
        withLock: async (fn) => {
          const release = await acquireProjectLock(ctx.projDir, { ...lockOptions(ctx, 'watch'), clock: lockClock });
          try {
            return await fn();
          } finally {
            await release();
          }
        },
        watchFiles: (paths) => fw.setPaths(paths),
      },
      {
        resyncMs,
        debounceMs,
        prune: o.prune ?? false,
        recreate: o.recreate ?? false,
        provision: o.provision ?? true,
        ...(o.backoff ? { backoff: o.backoff } : {}),
        onEvent,
        onPass: (p) => {
          passes++;
          if (p.result) track(recordStatus(ctx, p.result.vms));
          o.onPass?.(p);
        },
      },
      signal,
    );
    ref.ctl = loop;
    // VMs started by one-shot commands between passes (`tend start web`): their VmStarted lands in
    // the project's event log, and watch starts watching their processes at once
    const log = eventsPath(ctx.projDir);
    let logSize = await stat(log).then(
      (st) => st.size,
      () => 0,
    );
    /** Do the lines appended since the last look include a VmStarted? */
    const startedSince = async (): Promise<boolean> => {
      const size = (await stat(log)).size;
      const from = size < logSize ? 0 : logSize;
      logSize = size;
      if (size <= from) return false;
      const fh = await open(log, 'r');
      try {
        const buf = Buffer.alloc(size - from);
        await fh.read(buf, 0, buf.length, from);
        return buf.includes('"reason":"VmStarted"');
      } finally {
        await fh.close();
      }
    };
    const ew = watchFiles([log], {
      onChange: () =>
        void startedSince().then(
          (started) => started && loop.rearm(),
          () => undefined,
        ),
    });
    cleanups.push(() => ew.close());
    if (o.subscribeReload) cleanups.push(o.subscribeReload(() => loop.reload()));
    await Promise.all([fw.ready(), ew.ready()]);
    onEvent(
      tendEvent(
        deps.clock.now(),
        'Normal',
        'WatchStarted',
        undefined,
        `watching project ${ctx.project.name} (${files.length} file${files.length === 1 ? '' : 's'}); resync ${resyncMs > 0 ? `every ${Math.round(resyncMs / 1000)}s` : 'off'}`,
      ),
    );
    o.onReady?.(loop);
    await loop.done;
    onEvent(tendEvent(deps.clock.now(), 'Normal', 'WatchStopped', undefined, 'stopped watching; VMs left running'));
    return { project: ctx.project.name, passes };
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort: the rest must still be released
      }
    }
    await releaseController();
  }
}

/** A project renamed in its file would live in another state folder: not something watch can follow. */
function sameProject(a: Project, b: Project): boolean {
  return a.name === b.name && a.dir === b.dir;
}

function renamed(
  a: Project,
  b: Project,
): { file: string; line: number; column: number; message: string; hint: string; severity: 'error' }[] {
  return [
    {
      file: a.files[0] ?? a.dir,
      line: 1,
      column: 1,
      message: `the project name changed from "${a.name}" to "${b.name}" while watching`,
      hint: 'restart `tend watch` to manage the renamed project (its VMs live in another state folder)',
      severity: 'error',
    },
  ];
}

/** One event as a line: JSON with --json (or when not a terminal), else "19:42:03 web: VmStarted: message". */
export function renderWatchEvent(e: TendEvent, json: boolean): string {
  if (json) return JSON.stringify(e);
  const t = new Date(e.time);
  const time = Number.isNaN(t.getTime()) ? e.time : t.toTimeString().slice(0, 8);
  const lines = e.message.split('\n');
  const head = `${time} ${e.type === 'Warning' ? 'WARN ' : 'INFO '} ${e.vm ? `${e.vm}: ` : ''}${e.reason}: ${lines[0]}`;
  return [head, ...lines.slice(1).map((l) => `    ${l}`)].join('\n');
}

export const command: CliCommand = {
  name: 'watch',
  description: 'converge, then keep converging on every save, VM crash and resync (Ctrl-C stops watching; VMs keep running)',
  examples: ['tend watch', 'tend watch --resync 1m --prune', 'tend watch --warm', 'tend watch --json | jq .reason'],
  stageTimeouts: true,
  log: true,
  configure: (c) =>
    c
      .option('--resync <duration>', 'periodic full converge; 0 turns it off', '30s')
      .option('--debounce <duration>', 'quiet time after a file save before reconciling', '50ms')
      .option('--no-provision', 'skip provision steps')
      .option('--recreate', 'replace disks where the image changed or the disk shrank')
      .option('--prune', 'stop and delete VMs no longer declared')
      .option('--warm', 'as `tend up --warm`: warm VMs unless a VM sets warm itself (docs/warm.md)'),
  async run({ g, opts, io }) {
    const o = opts as { resync: string; debounce: string; provision?: boolean; recreate?: boolean; prune?: boolean; warm?: boolean };
    // human lines on a terminal; one JSON event per line with --json or under systemd/CI
    const json = (g.json ?? false) || !process.stdout.isTTY;
    await watchCommand({
      ...g,
      resync: o.resync,
      debounce: o.debounce,
      provision: o.provision !== false,
      recreate: o.recreate ?? false,
      prune: o.prune ?? false,
      ...(o.warm ? { warm: true } : {}),
      onEvent: (e) => io.out(renderWatchEvent(e, json)),
      subscribeReload: (reload) => {
        const onHup = (): void => reload();
        process.on('SIGHUP', onHup);
        return () => process.off('SIGHUP', onHup);
      },
    });
    return EXIT.ok;
  },
};
