/** A problem in a project file, located at file:line:column (1-based). */
export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  /** what is wrong, in plain words */
  message: string;
  /** what to write instead, when that helps */
  hint?: string;
  severity: 'error' | 'warning';
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.column}`;
  return `${where}: ${d.severity}: ${d.message}${d.hint ? `\n  hint: ${d.hint}` : ''}`;
}
