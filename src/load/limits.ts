/**
 * Documented limits of project files (docs/kdl.md, docs/compose.md), checked before parsing so
 * that no input can make validation slow, memory-hungry or overflow the stack. Each is reported
 * at the position where the limit is crossed.
 */
import type { Stats } from 'node:fs';
import type { Diagnostic } from '../../schemas/diagnostic.js';

/** A project file larger than this is not read. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** A line longer than this (a huge string, say) is refused. */
export const MAX_LINE_CHARS = 256 * 1024;
/** Blocks (KDL `{ }`, YAML maps and lists) nested deeper than this are refused. */
export const MAX_DEPTH = 32;
/** VMs a project declares (services × replicas, vm nodes), over all its files. */
export const MAX_VMS = 10_000;
/** A file a project file names and tend reads while loading (a public key, user-data, a Dockerfile). */
export const MAX_REFERENCED_BYTES = 16 * 1024 * 1024;

const mib = (n: number): string => `${Math.round((n / 1024 / 1024) * 10) / 10} MiB`;

/** The file's size and line lengths, before any parser sees it. */
export function textLimits(file: string, text: string): Diagnostic | undefined {
  if (text.length > MAX_FILE_BYTES)
    return {
      file,
      line: 1,
      column: 1,
      severity: 'error',
      message: `the file is ${mib(text.length)}: tend reads project files up to ${mib(MAX_FILE_BYTES)}`,
      hint: 'split the project into several files (tend -f a.yaml -f b.yaml), or move large content into files it names',
    };
  let line = 1;
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end - start > MAX_LINE_CHARS)
      return {
        file,
        line,
        column: MAX_LINE_CHARS + 1,
        severity: 'error',
        message: `line ${line} is ${end - start} characters long: tend reads lines up to ${MAX_LINE_CHARS}`,
        hint: 'put large content into a file the project names (user-data, a provision script, an upload)',
      };
    if (nl < 0) return undefined;
    start = nl + 1;
    line++;
  }
}

/** A value for a message: long ones are cut, so a diagnostic stays readable whatever the input. */
export function shorten(s: string, max = 80): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** A message with every word longer than 120 characters cut (values are quoted in messages). */
export function tidy(message: string): string {
  return message.length <= 200 ? message : message.replace(/[^\s]{121,}/g, (w) => shorten(w, 120));
}

/**
 * Why a referenced path cannot be read safely, or undefined: a device, a FIFO or a socket would
 * block or never end, so only regular files (and folders where one is allowed) are read; files
 * read into memory while loading have a size limit.
 */
export function specialFile(
  st: Stats,
  what: string,
  value: string,
  kind: 'file' | 'folder' | 'dir' | 'any',
  maxBytes?: number,
): string | undefined {
  if (st.isDirectory()) return undefined;
  if (!st.isFile())
    return `${what} "${shorten(value)}" is not a regular file (a device, a FIFO or a socket): tend reads only files${kind === 'any' ? ' and folders' : ''}`;
  if (maxBytes !== undefined && st.size > maxBytes)
    return `${what} "${shorten(value)}" is ${mib(st.size)}: tend reads at most ${mib(maxBytes)} of it`;
  return undefined;
}
