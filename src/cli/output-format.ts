/**
 * `-o json|yaml|wide|name` and `-q` of the read commands (ps, ls, status, images, volume ls),
 * kubectl's spellings; `--json` stays the same as `-o json`. One place decides the format and
 * prints a result in it, so every read command behaves alike.
 */
import type { Command } from 'commander';
import { UsageError } from '../../schemas/errors.js';
import type { CliIo } from './command.js';
import type { GlobalOptions } from './context.js';

export const FORMATS = ['table', 'json', 'yaml', 'wide', 'name'] as const;
export type Format = (typeof FORMATS)[number];

/** Adds -o/--output (and -q/--quiet when the command lists names). */
export function outputOptions(c: Command, o: { quiet?: boolean; wide?: boolean } = {}): Command {
  const formats = FORMATS.filter((f) => (f !== 'wide' || o.wide !== false) && (f !== 'name' || o.quiet !== false));
  c.option('-o, --output <format>', `output format: ${formats.join(', ')} (--json is -o json)`);
  if (o.quiet !== false) c.option('-q, --quiet', 'names only, one a line (-o name)');
  return c;
}

/** The format asked for: -q, else -o, else --json, else a table. */
export function outputFormat(g: GlobalOptions, opts: Record<string, unknown>): Format {
  if (opts.quiet === true) return 'name';
  const o = opts.output;
  if (typeof o === 'string') {
    const f = o === 'text' ? 'table' : o;
    if (!(FORMATS as readonly string[]).includes(f))
      throw new UsageError(`-o ${o}: unknown output format; use one of ${FORMATS.join(', ')}`, 'BadOutputFormat');
    return f as Format;
  }
  return g.json ? 'json' : 'table';
}

export interface Printable {
  /** the machine-readable result (json and yaml) */
  data: unknown;
  table: () => string;
  /** more columns; default: the table */
  wide?: () => string;
  /** -o name / -q */
  names?: () => string[];
}

export async function printResult(io: CliIo, format: Format, p: Printable): Promise<void> {
  switch (format) {
    case 'json':
      return io.json(p.data);
    case 'yaml': {
      const mod = (await import('yaml')) as typeof import('yaml') & { default?: typeof import('yaml') };
      const stringify = mod.stringify ?? mod.default?.stringify;
      return io.out(stringify(p.data, { lineWidth: 0 }).trimEnd());
    }
    case 'name':
      if (!p.names) throw new UsageError('-o name / -q: this command lists no names', 'BadOutputFormat');
      return io.out(p.names().join('\n'));
    case 'wide':
      return io.out((p.wide ?? p.table)());
    default:
      return io.out(p.table());
  }
}

/** ms since epoch → RFC 3339 (UTC), null stays null. */
export const rfc3339 = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();
