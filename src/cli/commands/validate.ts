/** `tend validate`: load and check the project files; no state dir, no backend, no VM touched. */
import type { Diagnostic } from '../../../schemas/diagnostic.js';
import { loadFiles, type GlobalOptions } from '../context.js';

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
