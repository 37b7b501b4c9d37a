/** `tend verify IMAGE` / `tend verify --all` (holos): re-hash stored images against their recorded checksums. */
import { EXIT, UsageError } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';
import { resolveStateRoot, type GlobalOptions } from '../context.js';

export interface VerifyRow {
  ref: string;
  ok: boolean;
  expected: string;
  actual: string;
}

export async function verifyCommand(g: GlobalOptions, o: { ref?: string; all?: boolean }): Promise<VerifyRow[]> {
  const store = await import('../../images/store.js');
  const root = resolveStateRoot(g);
  if (!o.all && !o.ref) throw new UsageError('tend verify needs an image name, or --all', 'NoImage');
  if (o.all && o.ref) throw new UsageError('give an image name or --all, not both', 'BadUsage');
  const refs = o.all ? (await store.listImages(root)).map((i) => i.name) : [o.ref as string];
  const out: VerifyRow[] = [];
  for (const ref of refs) out.push({ ref, ...(await store.verifyImage(root, ref)) });
  return out;
}

export const command: CliCommand = {
  name: 'verify',
  description: 'check stored images against their checksums (one, or --all)',
  examples: ['tend verify debian:12', 'tend verify --all'],
  configure: (c) => c.argument('[image]', 'a stored image name').option('--all', 'every stored image'),
  async run({ g, args, opts, io }) {
    const rows = await verifyCommand(g, { ...(args[0] ? { ref: args[0] as string } : {}), all: opts.all === true });
    if (g.json) io.json({ images: rows });
    else if (rows.length === 0) io.out('no images stored');
    else
      for (const r of rows)
        io.out(r.ok ? `${r.ref}: ok (${r.actual})` : `${r.ref}: MISMATCH\n  expected ${r.expected}\n  actual   ${r.actual}`);
    return rows.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
  },
};
