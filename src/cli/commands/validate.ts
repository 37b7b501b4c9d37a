/** `tend validate`: load and check the project files; no state dir, no backend, no VM touched. */
import type { Diagnostic } from '../../../schemas/diagnostic.js';
import { loadFiles, type GlobalOptions } from '../context.js';
import { EXIT, ValidationError } from '../../../schemas/errors.js';
import { formatDiagnostic } from '../../../schemas/diagnostic.js';
import type { CliCommand } from '../command.js';

export interface ValidateResult {
  ok: boolean;
  files: string[];
  /** VM names declared (empty when invalid) */
  vms: string[];
  diagnostics: Diagnostic[];
}

export async function validateCommand(g: GlobalOptions): Promise<ValidateResult> {
  const r = await loadFiles(g);
  return {
    ok: r.project !== null,
    files: r.files,
    vms: r.project ? r.project.vms.map((v) => v.name) : [],
    diagnostics: r.diagnostics,
  };
}

export const command: CliCommand = {
  name: 'validate',
  description: 'check the project files and exit (0: valid, 3: errors, each with file:line:col)',
  examples: ['tend validate', 'tend validate -f VMFile.kdl --json'],
  async run({ g, io }) {
    const r = await validateCommand(g);
    if (g.json) {
      io.json({ ok: r.ok, files: r.files, vms: r.vms, diagnostics: r.diagnostics });
      return r.ok ? EXIT.ok : EXIT.invalidInput;
    }
    if (!r.ok) throw new ValidationError(r.diagnostics);
    for (const d of r.diagnostics) io.err(formatDiagnostic(d));
    io.out(`valid: ${r.vms.length} VM${r.vms.length === 1 ? '' : 's'} (${r.vms.join(', ')}) in ${r.files.join(', ')}`);
    return EXIT.ok;
  },
};
