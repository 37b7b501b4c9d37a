/** Issue-2 bar (a): load + validate + plan of a generated 500-VM project, in-process (< 200 ms). */
import { rmSync } from 'node:fs';
import { plan } from '../controllers/plan.js';
import { loadProject } from '../src/load/project.js';
import { generateProject, median, timeRuns, type Bench } from './lib.js';

const VMS = 500;
const RUNS = 15;

export const bench: Bench = {
  name: 'load-plan',
  description: `load + validate + plan, ${VMS} VMs, in-process`,
  async run() {
    const { file, dir } = generateProject(VMS);
    let vms = 0;
    let times: number[];
    try {
      times = await timeRuns(RUNS, async () => {
        const r = await loadProject([file], { cwd: dir });
        if (!r.project) throw new Error(`generated project is invalid: ${r.diagnostics.map((d) => d.message).join('; ')}`);
        vms = plan(r.project, { vms: {} }, { recreate: false, prune: false }).length;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (vms !== VMS) throw new Error(`plan has ${vms} entries, expected ${VMS}`);
    return [{ name: `load+validate+plan ${VMS} VMs`, measuredMs: median(times), targetMs: 200, runs: RUNS }];
  },
};
