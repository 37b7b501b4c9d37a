/** Shared bench helpers: timing, medians, generated projects, the result row shape. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchRow {
  name: string;
  /** median, ms */
  measuredMs: number;
  /** the bar: measured must be below it */
  targetMs: number;
  /** something measured alongside for context (e.g. `node -e 0`), ms */
  baselineMs?: number;
  baselineName?: string;
  runs: number;
}

export interface Bench {
  name: string;
  description: string;
  run(): Promise<BenchRow[]>;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** CPU time this process has used (user + system, all threads), ms. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export async function timeRuns(n: number, fn: () => unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    await fn();
    out.push(nowMs() - t0);
  }
  return out;
}

/** A tend.yaml with `count` services (catalog image, ports, a volume, depends_on chains). */
export function generateProject(count: number): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), `tend-bench-${count}-`));
  const lines = ['name: bench', 'volumes:', '  shared: { size: 1 }', 'services:'];
  for (let i = 0; i < count; i++) {
    lines.push(
      `  vm${i}:`,
      '    image: debian:12',
      '    vm: { vcpu: 1, memory_mb: 512, disk_size: 10 }',
      `    ports: ["${20000 + i}:80"]`,
      '    volumes: ["shared:/srv/shared"]',
      '    cloud_init: { packages: [curl], runcmd: ["echo hi"] }',
      ...(i % 10 !== 0 ? [`    depends_on: [vm${i - (i % 10)}]`] : []),
    );
  }
  const file = join(dir, 'tend.yaml');
  writeFileSync(file, lines.join('\n') + '\n');
  return { dir, file };
}
