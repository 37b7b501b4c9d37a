/**
 * Helper processes tend starts for a VM besides QEMU (today: one virtiofsd per host folder) are
 * owned like QEMU: each is recorded in the VM's helpers.json, carries the VM's folder in its
 * environment (TEND_HELPER_OF, readable in /proc/<pid>/environ), and is found by that mark, never
 * by a pid alone (a recorded pid may have been reused). Whatever a crash leaves behind is reaped
 * before the VM starts again, and when it stops or is destroyed.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import type { Clock } from '../../schemas/ports.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { validateHelperRecord } from '../state/validators.generated.js';
import { pidAlive } from '../pid.js';

/** The environment variable that marks a helper as this VM's: its value is the VM's folder. */
export const HELPER_ENV = 'TEND_HELPER_OF';

export interface HelperEntry {
  kind: 'virtiofsd';
  pid: number;
  /** the socket it serves (removed with it) */
  socket: string;
}

export interface HelperRecord {
  helpers: HelperEntry[];
}

export const helperRecordSchema = {
  $id: 'tend:state/helpers',
  type: 'object',
  required: ['helpers'],
  properties: {
    helpers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kind', 'pid', 'socket'],
        properties: { kind: { const: 'virtiofsd' }, pid: { type: 'integer', minimum: 1 }, socket: { type: 'string' } },
      },
    },
  },
} as const;

/** The environment a helper of the VM in `vmDir` is started with. */
export function helperEnv(env: NodeJS.ProcessEnv, vmDir: string): NodeJS.ProcessEnv {
  return { ...env, [HELPER_ENV]: vmDir };
}

async function environOf(pid: number): Promise<string[] | null> {
  try {
    return (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  } catch {
    return null;
  }
}

/** Live processes marked as helpers of the VM in `vmDir` (a /proc scan). */
export async function findHelpers(vmDir: string): Promise<number[]> {
  const mark = `${HELPER_ENV}=${vmDir}`;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const found: number[] = [];
  await Promise.all(
    entries.map(async (e) => {
      if (!/^[0-9]+$/.test(e) || Number(e) === process.pid) return;
      const environ = await environOf(Number(e));
      if (environ?.includes(mark) && pidAlive(Number(e))) found.push(Number(e));
    }),
  );
  return found.sort((a, b) => a - b);
}

export async function readHelpers(path: string): Promise<HelperEntry[]> {
  return (await readJson<HelperRecord>(path, validateHelperRecord))?.helpers ?? [];
}

/** Add one started helper to the record (right after it is spawned, before waiting for it). */
export async function recordHelper(path: string, entry: HelperEntry): Promise<void> {
  const helpers = (await readHelpers(path)).filter((h) => h.pid !== entry.pid);
  await writeJsonAtomic(path, { helpers: [...helpers, entry] } satisfies HelperRecord);
}

/**
 * Stop every helper of the VM in `vmDir` (marked ones, found by scan; a recorded pid counts only
 * when it carries the mark): SIGTERM, then SIGKILL after `graceMs`. Removes their sockets and
 * the record. Resolves with the pids it stopped.
 */
export async function reapHelpers(vmDir: string, recordPath: string, clock: Clock, graceMs = 2000): Promise<number[]> {
  const recorded = await readHelpers(recordPath);
  const pids = await findHelpers(vmDir);
  const send = (sig: NodeJS.Signals, pid: number): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone meanwhile
    }
  };
  for (const p of pids) send('SIGTERM', p);
  const until = clock.now() + graceMs;
  let left = pids;
  while (left.length > 0 && clock.now() < until) {
    await clock.sleep(20);
    const still = await findHelpers(vmDir);
    left = left.filter((p) => still.includes(p));
  }
  for (const p of left) send('SIGKILL', p);
  for (const h of recorded) {
    await rm(h.socket, { force: true });
    await rm(`${h.socket}.pid`, { force: true });
  }
  await rm(recordPath, { force: true });
  return pids;
}
