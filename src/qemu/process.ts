/**
 * Starting and stopping a QEMU process. QEMU is spawned detached (own session, stdio to its
 * stderr log) so it outlives tend; start resolves once QMP reports it running, and a QEMU that
 * exits during start is reported with its own stderr and leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { installNext } from '../host/install-hints.js';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';
import { pidAlive } from '../pid.js';
import { QmpClient } from './qmp.js';

export interface SpawnOptions {
  binary: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
  stderrPath: string;
  qmpPath: string;
  clock: Clock;
  vmName: string;
  /**
   * the argv restores a saved state (-incoming): the guest comes back in the run state it was saved
   * in (paused: tend pauses it before saving), so it is continued once the state is loaded
   */
  incoming?: boolean;
  /**
   * with `incoming`: run on the restored, still paused guest before it is continued (a TAP clone's
   * NIC is set link-down here, src/qemu/clone.ts)
   */
  beforeCont?: (qmp: QmpClient) => Promise<void>;
  /**
   * with `incoming` and an argv ending in `-incoming defer`: the state's URI, loaded with QMP
   * `migrate-incoming` once `beforeLoad` ran (a warm clone's NIC goes down before the load too)
   */
  deferred?: { uri: string; beforeLoad?: (qmp: QmpClient) => Promise<void> };
  /** how long QEMU may take to answer QMP (default 30 s) */
  timeoutMs?: number;
  signal?: AbortSignal;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

async function stderrOf(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim().slice(-4000);
  } catch {
    return '';
  }
}

/** Spawn QEMU detached and wait until QMP says it runs. Resolves with the child's pid. */
export async function spawnQemu(o: SpawnOptions): Promise<number> {
  if (o.signal?.aborted) throw abortError(o.signal);
  const fd = openSync(o.stderrPath, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(o.binary, o.argv, { detached: true, stdio: ['ignore', fd, fd], env: o.env });
  } finally {
    closeSync(fd);
  }
  let exited: { code: number | null; sig: NodeJS.Signals | null } | null = null;
  let spawnError: Error | null = null;
  child.on('exit', (code, sig) => (exited = { code, sig }));
  child.on('error', (err) => (spawnError = err));
  child.unref();

  const kill = async (): Promise<void> => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    for (let i = 0; i < 100 && !exited && pidAlive(child.pid); i++) await new Promise((r) => setTimeout(r, 20));
  };
  const failed = async (): Promise<BackendError> => {
    const err = await stderrOf(o.stderrPath);
    const e = exited as { code: number | null; sig: NodeJS.Signals | null } | null;
    const how = spawnError
      ? `could not be run (${(spawnError as Error).message})`
      : e?.sig
        ? `was killed by ${e.sig}`
        : `exited with code ${e?.code}`;
    if ((spawnError as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
      return new BackendError('QemuNotInstalled', `${o.vmName}: ${o.binary} is not installed (not found on PATH)`, {
        cause: spawnError,
        next: installNext(o.binary),
      });
    }
    return new BackendError(
      'QemuStartFailed',
      `${o.vmName}: QEMU ${how} during start${err ? `:\n${err}` : ''}`,
      spawnError ? { cause: spawnError } : undefined,
    );
  };

  const deadline = o.clock.now() + (o.timeoutMs ?? 30000);
  let loading = false;
  try {
    for (;;) {
      if (o.signal?.aborted) throw abortError(o.signal);
      if (exited || spawnError) throw await failed();
      if (o.clock.now() > deadline) {
        throw new BackendError(
          'QemuStartTimeout',
          `${o.vmName}: QEMU did not answer on its QMP socket within ${(o.timeoutMs ?? 30000) / 1000} s${(await stderrOf(o.stderrPath)) ? `:\n${await stderrOf(o.stderrPath)}` : ''}`,
        );
      }
      let qmp: QmpClient | null = null;
      try {
        qmp = await QmpClient.connect(o.qmpPath, { timeoutMs: 1000, signal: o.signal });
      } catch (err) {
        if (o.signal?.aborted) throw abortError(o.signal);
        if (err instanceof BackendError && err.reason === 'QmpTimeout') {
          // the socket accepted but never greeted: keep trying until the deadline
        }
        await o.clock.sleep(50, o.signal);
        continue;
      }
      try {
        const st = await qmp.queryStatus(2000);
        if (st.status === 'running') return child.pid as number;
        if (o.incoming && st.status === 'paused') {
          await o.beforeCont?.(qmp);
          await qmp.execute('cont', undefined, { timeoutMs: 5000 });
          continue;
        }
        if (o.incoming && o.deferred && !loading && st.status === 'inmigrate') {
          await o.deferred.beforeLoad?.(qmp);
          await qmp.execute('migrate-incoming', { uri: o.deferred.uri }, { timeoutMs: 5000 });
          loading = true;
          continue;
        }
        if (st.status === 'prelaunch' || st.status === 'inmigrate') {
          await o.clock.sleep(50, o.signal);
          continue;
        }
        throw new BackendError('QemuStartFailed', `${o.vmName}: QEMU started but is "${st.status}"`);
      } finally {
        qmp.close();
      }
    }
  } catch (err) {
    await kill();
    if (err instanceof BackendError && err.reason === 'QmpClosed' && exited) throw await failed();
    throw err;
  }
}

/** Wait until `pid` is gone (or `ms` passed); true when it is gone. */
export async function waitExit(
  pid: number,
  ms: number,
  clock: Clock,
  isOurs: () => Promise<boolean>,
  signal?: AbortSignal,
): Promise<boolean> {
  const until = clock.now() + ms;
  for (;;) {
    if (!pidAlive(pid) || !(await isOurs())) return true;
    if (clock.now() >= until) return false;
    await clock.sleep(Math.min(50, Math.max(1, until - clock.now())), signal);
  }
}
