/**
 * Is this VM's QEMU alive? The pidfile alone is not proof: a pid can be reused by any other
 * process after QEMU died. A pid counts only when the process is alive AND its
 * /proc/<pid>/cmdline is a qemu whose argv names this VM's own pidfile.
 *
 * Nor is the pidfile the only way to find it: a damaged, truncated or deleted pidfile must not
 * make tend start a second QEMU on the same disk. When the pidfile does not lead to the VM's
 * QEMU, findQemu scans /proc for a qemu whose argv names the VM's pidfile (every QEMU tend starts
 * has one, and the path is the VM's own).
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { pidAlive } from '../pid.js';

/** The pid in a pidfile; null when missing or not a pid. */
export async function readPidfile(path: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 1 ? pid : null;
}

/** The argv of a live process (NUL-separated /proc/<pid>/cmdline); null when it is gone or a zombie. */
export async function processArgv(pid: number): Promise<string[] | null> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (raw.length === 0) return null; // zombie or kernel thread
    const parts = raw.split('\0');
    if (parts[parts.length - 1] === '') parts.pop();
    return parts;
  } catch {
    return null;
  }
}

/**
 * True when `argv` is a QEMU (the program, or for a script its interpreter's first argument, is
 * named qemu-system-*) whose `-pidfile` is `pidfile`.
 */
export function isQemuFor(argv: readonly string[], pidfile: string): boolean {
  if (!isQemu(argv)) return false;
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] === '-pidfile' && argv[i + 1] === pidfile) return true;
  }
  return false;
}

/** The program, or for a script its interpreter's first argument, is named qemu-system-*. */
export function isQemu(argv: readonly string[]): boolean {
  return argv.slice(0, 2).some((a) => basename(a).startsWith('qemu-system'));
}

export interface Liveness {
  pid: number;
  argv: string[];
}

/** The live QEMU of the VM whose pidfile is `pidfile`, or null (no pidfile, dead, or not ours). */
export async function liveQemu(pidfile: string): Promise<Liveness | null> {
  const pid = await readPidfile(pidfile);
  if (pid === null || !pidAlive(pid)) return null;
  const argv = await processArgv(pid);
  if (!argv || !isQemuFor(argv, pidfile)) return null;
  return { pid, argv };
}

/** Live processes whose argv satisfies `match` (a /proc scan; the caller's own process excluded). */
export async function scanProcesses(match: (argv: readonly string[]) => boolean): Promise<Liveness[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const found: Liveness[] = [];
  await Promise.all(
    entries.map(async (e) => {
      if (!/^[0-9]+$/.test(e)) return;
      const pid = Number(e);
      if (pid === process.pid) return;
      const argv = await processArgv(pid);
      if (argv && match(argv)) found.push({ pid, argv });
    }),
  );
  return found.sort((a, b) => a.pid - b.pid);
}

/** Every live QEMU, from one /proc scan. */
export type QemuScan = () => Promise<Liveness[]>;

/**
 * One /proc scan shared by the VMs observed in one pass (`ps`, `ls`, a reconcile's observe): made
 * when the first VM needs it, so a pass over 50 stopped VMs reads /proc once, not 50 times.
 */
export function sharedQemuScan(): QemuScan {
  let scan: Promise<Liveness[]> | undefined;
  return () => (scan ??= scanProcesses(isQemu));
}

/**
 * The VM's QEMU, found by its pidfile or, when that does not lead to it, by a /proc scan for a
 * qemu naming the pidfile (`scan`: a scan shared with other VMs of the same pass). `found` says
 * how. Null when none runs.
 */
export async function findQemu(pidfile: string, scan?: QemuScan): Promise<(Liveness & { found: 'pidfile' | 'scan' }) | null> {
  const byFile = await liveQemu(pidfile);
  if (byFile) return { ...byFile, found: 'pidfile' };
  const scanned = scan ? (await scan()).filter((l) => isQemuFor(l.argv, pidfile)) : await scanProcesses((argv) => isQemuFor(argv, pidfile));
  return scanned[0] ? { ...scanned[0], found: 'scan' } : null;
}
