/** Issue-13 bar: `validate` of 5,000 VMs < 2 s, in-process, for tend.yaml and for VMFile.kdl. */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadProject } from '../src/load/project.js';
import { generateProject, median, timeRuns, type Bench, type BenchRow } from './lib.js';

const VMS = 5000;
const RUNS = 3;

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

export const bench: Bench = {
  name: 'validate',
  description: `load + validate ${VMS} VMs (tend.yaml, VMFile.kdl), in-process`,
  async run() {
    const { file, dir } = generateProject(VMS);
    const kdlDir = join(dir, 'kdl');
    const rows: BenchRow[] = [];
    try {
      writeFileSync(join(dir, '.keep'), '');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(kdlDir);
      const kdl = generateKdl(kdlDir, VMS);
      for (const [name, f] of [
        ['tend.yaml', file],
        ['VMFile.kdl', kdl],
      ] as const) {
        const times = await timeRuns(RUNS, async () => {
          const r = await loadProject([f], { cwd: dir });
          if (!r.project || r.project.vms.length !== VMS)
            throw new Error(`generated ${name} is invalid: ${r.diagnostics.map((d) => d.message).join('; ')}`);
        });
        rows.push({ name: `validate ${VMS} VMs (${name})`, measuredMs: median(times), targetMs: 2000, runs: RUNS });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
