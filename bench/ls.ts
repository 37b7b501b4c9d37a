/**
 * Issue-14 bar: `tend ls` with 50 VMs in 10 projects, wall time with Node's start included
 * (< 300 ms). Fake state, no VMs: 10 project folders as tend writes them (project.json, and per
 * VM applied.json, backend.json, a disk file and a pid file naming a live process that is not
 * QEMU, so liveness reads /proc for every VM and finds it stopped).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadProject } from '../src/load/project.js';
import { projectDir, vmDir, vmFile } from '../src/state/paths.js';
import { projectRecordPath } from '../src/state/project-record.js';
import { generateProject, median, timeRuns, type Bench, type BenchRow } from './lib.js';

const PROJECTS = 10;
const VMS_EACH = 5;
const RUNS = 9;
const CLI = resolve(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');

/** A state root with PROJECTS projects of VMS_EACH VMs each; returns it and the folders to remove. */
export async function fakeState(): Promise<{ root: string; cleanup: string[] }> {
  const root = mkdtempSync(join(tmpdir(), 'tend-bench-ls-state-'));
  const cleanup = [root];
  const { dir, file } = generateProject(VMS_EACH);
  cleanup.push(dir);
  const loaded = await loadProject([file], { cwd: dir });
  if (!loaded.project) throw new Error(`generated project is invalid: ${JSON.stringify(loaded.diagnostics)}`);
  for (let p = 0; p < PROJECTS; p++) {
    const name = `proj${p}`;
    const pdir = join(dir, name);
    const pd = projectDir(root, name, pdir);
    mkdirSync(pd, { recursive: true });
    writeFileSync(
      projectRecordPath(pd),
      JSON.stringify({ name, dir: pdir, files: [join(pdir, 'tend.yaml')], createdAt: new Date().toISOString() }),
    );
    for (const vm of loaded.project.vms) {
      mkdirSync(vmDir(pd, vm.name), { recursive: true });
      writeFileSync(vmFile(pd, vm.name, 'applied'), JSON.stringify({ spec: vm, diskImage: null }));
      writeFileSync(vmFile(pd, vm.name, 'backend'), JSON.stringify({ backend: 'qemu' }));
      writeFileSync(vmFile(pd, vm.name, 'disk'), '');
      writeFileSync(vmFile(pd, vm.name, 'pid'), `${process.pid}\n`);
    }
  }
  return { root, cleanup };
}

export const bench: Bench = {
  name: 'ls',
  description: `tend ls, ${PROJECTS * VMS_EACH} VMs in ${PROJECTS} projects, wall incl. Node start`,
  async run() {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const { root, cleanup } = await fakeState();
    const env = { ...process.env, TEND_STATE_DIR: root };
    try {
      const out = execFileSync(process.execPath, [CLI, 'ls', '--json'], { cwd: tmpdir(), env, encoding: 'utf8' });
      const rows = (JSON.parse(out) as { vms: { state: string }[] }).vms;
      if (rows.length !== PROJECTS * VMS_EACH) throw new Error(`tend ls printed ${rows.length} VMs, expected ${PROJECTS * VMS_EACH}`);
      if (rows.some((r) => r.state !== 'stopped')) throw new Error('a fake VM is not listed as stopped');
      const baseline = await timeRuns(RUNS, () => execFileSync(process.execPath, ['-e', '0']));
      const times = await timeRuns(RUNS, () => execFileSync(process.execPath, [CLI, 'ls'], { cwd: tmpdir(), env, stdio: 'ignore' }));
      const row: BenchRow = {
        name: `tend ls ${PROJECTS * VMS_EACH} VMs / ${PROJECTS} projects (wall)`,
        measuredMs: median(times),
        targetMs: 300,
        baselineMs: median(baseline),
        baselineName: 'node -e 0',
        runs: RUNS,
      };
      return [row];
    } finally {
      for (const d of cleanup) rmSync(d, { recursive: true, force: true });
    }
  },
};
