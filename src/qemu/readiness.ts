/**
 * The readiness record of a VM (issue 13, "False Ready"): the identity of the QEMU process that
 * was last observed ready, in the VM's folder as one line of text, `<pid>:<start time>` (the
 * start time in clock ticks since boot, /proc/<pid>/stat field 22, so a reused pid is another
 * process). `observe` reports `ready` only while that very process runs; anything else — no
 * record, a garbled one, another process — means "not known to be ready: check again".
 */
import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../state/atomic.js';
import { vmFile } from '../state/paths.js';
import { findQemu } from './liveness.js';

/** `<pid>:<start time>` of a live process, null when it is gone. */
export async function bootId(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = fields[19]; // field 22 overall; fields[0] is field 3 (state)
    return start && /^\d+$/.test(start) ? `${pid}:${start}` : null;
  } catch {
    return null;
  }
}

/** Is the live process `pid` the one recorded as ready? */
export async function readyRecorded(projDir: string, name: string, pid: number): Promise<boolean> {
  const [recorded, now] = await Promise.all([
    readFile(vmFile(projDir, name, 'ready'), 'utf8').then(
      (t) => t.trim(),
      () => null,
    ),
    bootId(pid),
  ]);
  return recorded !== null && now !== null && recorded === now;
}

/** Record the VM's running QEMU as ready (no process: nothing to record), or withdraw the record. */
export async function markReady(projDir: string, name: string, ready: boolean): Promise<void> {
  const path = vmFile(projDir, name, 'ready');
  const live = ready ? await findQemu(vmFile(projDir, name, 'pid')) : null;
  const id = live ? await bootId(live.pid) : null;
  if (id === null) await rm(path, { force: true });
  else await writeFileAtomic(path, `${id}\n`);
}
