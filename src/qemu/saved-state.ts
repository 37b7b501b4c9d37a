/**
 * A VM's saved state (issue 15 §1): its RAM and device state, written by QEMU's own migration
 * into `saved-state.bin` in the VM's folder, and `saved.json`, what the state belongs to. A state
 * is restored only when it is valid for what is about to run:
 *  - the same QEMU binary version (the migration stream is QEMU's own format),
 *  - the same QEMU command line (machine type, devices, memory, CPU: the argv is compared whole),
 *  - every writable disk (overlay, named volumes, UEFI variables) untouched since the save (its
 *    inode, size and mtime after QEMU exited), and the same cloud-init seed bytes.
 * Anything else discards it with the reason (`why`), and the VM cold-boots with its disk kept.
 * Never restore a state onto a disk it does not belong to.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { execa } from 'execa';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { vmFile } from '../state/paths.js';
import { validateSavedRecord } from '../state/validators.generated.js';

/** A file as it was: a later write, a replacement or a resize changes one of these. */
export interface FileId {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** saved.json */
export interface SavedRecord {
  /** when the state was written (ms since epoch) */
  savedAt: number;
  /** size of saved-state.bin */
  bytes: number;
  /** first line of `qemu-system-x86_64 --version` */
  qemuVersion: string;
  /** the QEMU argv the state was saved from (without -incoming) */
  argv: string[];
  /** writable disk path → its identity after QEMU exited */
  disks: Record<string, FileId>;
  /** sha256 of the seed ISO, null when the VM has none */
  seed: string | null;
}

export async function identify(path: string): Promise<FileId | null> {
  try {
    const s = await stat(path);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return null;
  }
}

export async function seedDigest(path: string | null): Promise<string | null> {
  if (path === null) return null;
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  } catch {
    return null;
  }
}

/**
 * First line of `<binary> --version`. Not cached: a QEMU upgraded while `tend watch` runs must be
 * seen (it is asked only when a state is saved or about to be restored).
 */
export async function qemuVersion(binary: string, env: NodeJS.ProcessEnv): Promise<string> {
  const r = await execa(binary, ['--version'], { env, reject: false, stdin: 'ignore', timeout: 10_000 });
  return String(r.stdout).split('\n')[0]?.trim() || `unknown (${String(r.stderr).trim().slice(0, 80)})`;
}

/** Paths of the saved state and its record. */
export function savedPaths(pd: string, vm: string): { state: string; record: string } {
  return { state: vmFile(pd, vm, 'savedState'), record: vmFile(pd, vm, 'savedRecord') };
}

export async function readSaved(
  pd: string,
  vm: string,
  onCorrupt?: (c: { path: string; error: string }) => void,
): Promise<SavedRecord | undefined> {
  return readJson<SavedRecord>(savedPaths(pd, vm).record, validateSavedRecord, onCorrupt);
}

export async function writeSaved(pd: string, vm: string, rec: SavedRecord): Promise<void> {
  await writeJsonAtomic(savedPaths(pd, vm).record, rec);
}

/** Delete the saved state and its record (a state is used once, or discarded). */
export async function discardSaved(pd: string, vm: string): Promise<void> {
  const p = savedPaths(pd, vm);
  // the record first: a state file without a record is never used
  await rm(p.record, { force: true });
  await rm(p.state, { force: true });
  await rm(`${p.state}.tmp`, { force: true });
}

/** What the state will be restored into: the QEMU, its argv, its writable disks and seed. */
export interface RestoreTarget {
  qemuVersion: string;
  argv: readonly string[];
  disks: readonly string[];
  seed: string | null;
}

/** Why the saved state cannot be restored into `t`, or null when it can. */
export async function invalidReason(rec: SavedRecord, statePath: string, t: RestoreTarget): Promise<string | null> {
  const st = await identify(statePath);
  if (!st) return 'the state file is missing';
  if (st.size !== rec.bytes) return `the state file is ${st.size} bytes, ${rec.bytes} were saved`;
  if (rec.qemuVersion !== t.qemuVersion) return `QEMU changed (saved with "${rec.qemuVersion}", now "${t.qemuVersion}")`;
  const argvChange = argvDifference(withoutHostForwards(rec.argv), withoutHostForwards(t.argv));
  if (argvChange) return `the VM's settings changed (${argvChange})`;
  return disksChanged(rec.disks, t.disks, rec.seed, t.seed);
}

/**
 * Why the writable disks `now` (and the seed) are not those a state was saved with (`saved`: each
 * disk's identity after the save), or null when they are untouched since.
 */
export async function disksChanged(
  saved: Record<string, FileId>,
  now: readonly string[],
  savedSeed: string | null,
  seed: string | null,
): Promise<string | null> {
  const was = Object.keys(saved).sort();
  const is = [...now].sort();
  if (was.join('\0') !== is.join('\0')) return `its disks changed (${was.join(', ')} → ${is.join(', ')})`;
  for (const d of is) {
    const id = await identify(d);
    const w = saved[d]!;
    if (!id) return `its disk ${d} is gone`;
    if (id.ino !== w.ino) return `its disk ${d} was replaced since the save`;
    if (id.size !== w.size || id.mtimeMs !== w.mtimeMs) return `its disk ${d} was written since the save`;
  }
  if (savedSeed !== seed) return 'its cloud-init seed changed';
  return null;
}

/**
 * `argv` without the host forwards of its user-mode netdevs: which host port reaches the guest's
 * sshd (or any forwarded port) is not part of the guest's state. A restore onto other host ports
 * (an edited `ports:`, an SSH port allocated anew) is as good as onto the same ones.
 */
export function withoutHostForwards(argv: readonly string[]): string[] {
  return argv.map((a, i) =>
    argv[i - 1] === '-netdev' && a.startsWith('user,')
      ? a
          .split(',')
          .filter((p) => !p.startsWith('hostfwd='))
          .join(',')
      : a,
  );
}

/** The first difference between two argvs, in words (`-m 1024 → -m 2048`). */
export function argvDifference(a: readonly string[], b: readonly string[]): string | null {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue;
    const value = !(a[i] ?? '-').startsWith('-') && !(b[i] ?? '-').startsWith('-');
    const flag = value && i > 0 && a[i - 1] === b[i - 1] && a[i - 1]?.startsWith('-') ? `${a[i - 1]} ` : '';
    return `${flag}${a[i] ?? '(none)'} → ${flag}${b[i] ?? '(none)'}`;
  }
  return null;
}

/** `exec:` migration URIs run through /bin/sh: a path in single quotes. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
