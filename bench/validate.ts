/**
 * Issue-13 bar: `validate` of 5,000 VMs < 2 s, in-process, for every dialect (tend.yaml,
 * holos.yaml, VMFile.kdl, vms.yml). The bar is judged on the CPU time the load takes (user +
 * system, all of the process's threads): on a machine shared with other jobs, wall time measures
 * the neighbours too, while CPU time bounds what the load costs on an idle one. Wall time is
 * printed next to it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadProject } from '../src/load/project.js';
import { cpuMs, generateProject, median, nowMs, type Bench, type BenchRow } from './lib.js';

const VMS = 5000;
const RUNS = 5;
const TARGET_MS = 2000;

/** The same project as generateProject, written as a VMFile.kdl. */
function generateKdl(dir: string, count: number): string {
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
function generateHolos(dir: string, count: number): string {
  const lines = ['name: bench', 'volumes:', '  shared: { size: 1G }', 'services:'];
  for (let i = 0; i < count; i++) {
    lines.push(
      `  vm${i}:`,
      '    image: debian:12',
      '    vm: { vcpu: 1, memory_mb: 512, disk_size: 10G }',
      `    ports: ["${20000 + i}:80"]`,
      '    volumes: ["shared:/srv/shared"]',
      '    cloud_init: { packages: [curl], runcmd: ["echo hi"] }',
      ...(i % 10 !== 0 ? [`    depends_on: [vm${i - (i % 10)}]`] : []),
    );
  }
  const file = join(dir, 'holos.yaml');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** ov's vms.yml: a cloud image with a checksum, sizes with units, a fixed SSH port per VM. */
function generateVmsYml(dir: string, count: number): string {
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

export const bench: Bench = {
  name: 'validate',
  description: `load + validate ${VMS} VMs (tend.yaml, holos.yaml, VMFile.kdl, vms.yml), in-process`,
  async run() {
    const { file, dir } = generateProject(VMS);
    const rows: BenchRow[] = [];
    try {
      const sub = (name: string): string => {
        const d = join(dir, name);
        mkdirSync(d);
        return d;
      };
      const files = [
        ['tend.yaml', file],
        ['holos.yaml', generateHolos(sub('holos'), VMS)],
        ['VMFile.kdl', generateKdl(sub('kdl'), VMS)],
        ['vms.yml', generateVmsYml(sub('vms'), VMS)],
      ] as const;
      for (const [name, f] of files) {
        const cpu: number[] = [];
        const wall: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const [c0, w0] = [cpuMs(), nowMs()];
          const r = await loadProject([f], { cwd: dir });
          [cpu[i], wall[i]] = [cpuMs() - c0, nowMs() - w0];
          if (!r.project || r.project.vms.length !== VMS)
            throw new Error(`generated ${name} is invalid: ${r.diagnostics.map((d) => d.message).join('; ')}`);
        }
        rows.push({
          name: `validate ${VMS} VMs (${name}), CPU`,
          measuredMs: median(cpu),
          targetMs: TARGET_MS,
          baselineMs: median(wall),
          baselineName: 'wall',
          runs: RUNS,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
