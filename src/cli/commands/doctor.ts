/** `tend doctor`: check the host (QEMU, qemu-img, which accelerator really works, state dir). */
import { resolveStateRoot, type GlobalOptions } from '../context.js';

export interface DoctorResult {
  ok: boolean;
  /** the backend's report, as is (JSON-serialisable) */
  report: Record<string, unknown>;
  problems: string[];
}

export async function doctorCommand(g: GlobalOptions): Promise<DoctorResult> {
  const { doctor } = await import('../../qemu/doctor.js');
  const report = (await doctor({ stateRoot: resolveStateRoot(g), env: g.env ?? process.env })) as unknown as Record<string, unknown>;
  const problems = Array.isArray(report.problems) ? (report.problems as unknown[]).map(String) : [];
  return { ok: problems.length === 0, report, problems };
}

function show(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export function renderDoctor(r: DoctorResult): string {
  const lines: string[] = [];
  const walk = (obj: Record<string, unknown>, indent: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'problems') continue;
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        lines.push(`${indent}${k}:`);
        walk(v as Record<string, unknown>, indent + '  ');
      } else {
        lines.push(`${indent}${k}: ${show(v)}`);
      }
    }
  };
  walk(r.report, '');
  lines.push(r.problems.length === 0 ? 'no problems found' : `problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n');
}
