/**
 * Issue-13 bar: `validate` of 5,000 VMs < 2 s, in-process, for every dialect (tend.yaml,
 * holos.yaml, VMFile.kdl, vms.yml). The bar is judged on the CPU time the load takes (user +
 * system, all of the process's threads): on a machine shared with other jobs, wall time measures
 * the neighbours too, while CPU time bounds what the load costs on an idle one. Wall time is
 * printed next to it.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadProject } from '../src/load/project.js';
import { cpuMs, generateHolos, generateKdl, generateProject, generateVmsYml, median, nowMs, type Bench, type BenchRow } from './lib.js';

const VMS = 5000;
const RUNS = 5;
const TARGET_MS = 2000;

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
