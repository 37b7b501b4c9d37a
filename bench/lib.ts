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

/** The compose form of the bench project; `unit` follows sizes (holos reads a bare number as bytes). */
function composeText(count: number, unit: '' | 'G'): string {
  const lines = ['name: bench', 'volumes:', `  shared: { size: 1${unit} }`, 'services:'];
  for (let i = 0; i < count; i++) {
    lines.push(
      `  vm${i}:`,
      '    image: debian:12',
      `    vm: { vcpu: 1, memory_mb: 512, disk_size: 10${unit} }`,
      `    ports: ["${20000 + i}:80"]`,
      '    volumes: ["shared:/srv/shared"]',
      '    cloud_init: { packages: [curl], runcmd: ["echo hi"] }',
      ...(i % 10 !== 0 ? [`    depends_on: [vm${i - (i % 10)}]`] : []),
    );
  }
  return lines.join('\n') + '\n';
}

/** A tend.yaml with `count` services (catalog image, ports, a volume, depends_on chains). */
export function generateProject(count: number): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), `tend-bench-${count}-`));
  const file = join(dir, 'tend.yaml');
  writeFileSync(file, composeText(count, ''));
  return { dir, file };
}

/** The same project as generateProject, written as a VMFile.kdl. */
export function generateKdl(dir: string, count: number): string {
  const lines = ['name "bench"', 'volume "shared" { size 1; }'];
  for (let i = 0; i < count; i++) {
    lines.push(
      `vm "vm${i}" {`,
      '  image "debian:12"',
      '  vcpus 1',
      '  memory 512',
      '  disk 10',
      `  port "${20000 + i}:80"`,
      '  volume "shared:/srv/shared"',
      '  cloud-init { package "curl"; runcmd "echo hi"; }',
      ...(i % 10 !== 0 ? [`  depends-on "vm${i - (i % 10)}"`] : []),
      '}',
    );
  }
  const file = join(dir, 'VMFile.kdl');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** The same project as a holos.yaml: sizes with units (a bare number is bytes in holos). */
export function generateHolos(dir: string, count: number): string {
  const file = join(dir, 'holos.yaml');
  writeFileSync(file, composeText(count, 'G'));
  return file;
}

/** ov's vms.yml: a cloud image with a checksum, sizes with units, a fixed SSH port per VM. */
export function generateVmsYml(dir: string, count: number): string {
  const lines = ['vms:'];
  for (let i = 0; i < count; i++) {
    lines.push(
      `  vm${i}:`,
      `    source: {kind: cloud_image, url: https://example.org/debian-12.qcow2, checksum: {type: sha256, value: ${'a'.repeat(64)}}}`,
      '    ram: 512M',
      '    cpus: 1',
      '    disk_size: 10G',
      '    network: {mode: user}',
      `    ssh: {port: ${20000 + i}}`,
      '    backend: qemu',
      '    cloud_init: {packages: [curl], runcmd: [echo hi]}',
    );
  }
  const file = join(dir, 'vms.yml');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}
