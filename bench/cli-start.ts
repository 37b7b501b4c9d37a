/**
 * Issue-14 bars: `tend --help` and `tend validate` of a 3-VM project, < 150 ms wall each with
 * Node's start included (median of RUNS), next to `node -e 0` measured in the same run (the runs
 * interleave, so a busy machine weighs on all of them alike). Validate runs on a 3-VM project of
 * every dialect: generated tend.yaml, holos.yaml and vms.yml (bench/lib.ts), and the 3-VM
 * VMFile.kdl of examples/vmctl-full (provisioning, cloud-init, keys: the KDL parser is the larger
 * one to load). Each is also reported as the child's CPU time: on a machine shared with other
 * jobs, wall time measures the neighbours too, and CPU time is close to what the command takes on
 * an idle one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateHolos, generateProject, generateVmsYml, median, nowMs, type Bench, type BenchRow } from './lib.js';

const RUNS = 11;
const TARGET_MS = 150;
const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** CPU time of this process's waited-for children so far (cutime + cstime of /proc/self/stat), ms. */
function childrenCpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[13]) + Number(rest[14])) * TICK_MS;
}

/** One run: wall time, and the child's CPU time (10 ms ticks). */
function run(args: string[], cwd?: string): { wall: number; cpu: number } {
  const [t0, c0] = [nowMs(), childrenCpuMs()];
  execFileSync(process.execPath, args, { cwd, stdio: 'ignore' });
  return { wall: nowMs() - t0, cpu: childrenCpuMs() - c0 };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export const bench: Bench = {
  name: 'cli-start',
  description: 'tend --help and tend validate of a 3-VM project in each dialect, wall incl. Node start',
  async run() {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const { dir } = generateProject(3);
    const sub = (name: string): string => {
      const d = join(dir, name);
      mkdirSync(d);
      return d;
    };
    const holosDir = sub('holos');
    generateHolos(holosDir, 3);
    const vmsDir = sub('vms');
    generateVmsYml(vmsDir, 3);
    // name, arguments, working directory; each validate case is a valid 3-VM project (checked
    // below, or the bar would time an error path)
    const cases: [string, string[], string | undefined][] = [
      ['node -e 0', ['-e', '0'], undefined],
      ['tend --help', [CLI, '--help'], undefined],
      ['tend validate 3 VMs, tend.yaml', [CLI, 'validate'], dir],
      ['tend validate 3 VMs, holos.yaml', [CLI, 'validate'], holosDir],
      ['tend validate 3 VMs, vms.yml', [CLI, 'validate'], vmsDir],
      ['tend validate 3 VMs, VMFile.kdl', [CLI, 'validate'], join(ROOT, 'examples', 'vmctl-full')],
    ];
    try {
      for (const [name, args, cwd] of cases.slice(2)) {
        const out = execFileSync(process.execPath, [...args, '--json'], { cwd, encoding: 'utf8' });
        const r = JSON.parse(out) as { ok: boolean; vms: string[] };
        if (!r.ok || r.vms.length !== 3) throw new Error(`${name}: not a valid 3-VM project: ${out}`);
      }
      const t = cases.map((): { wall: number; cpu: number }[] => []);
      for (let i = 0; i < RUNS; i++) cases.forEach(([, args, cwd], k) => t[k].push(run(args, cwd)));
      const [node] = t;
      // wall is the bar; CPU (mean of the child's user + system time) is what it costs on an idle machine
      return cases.slice(1).flatMap(([name], j): BenchRow[] => {
        const runs = t[j + 1];
        return [
          {
            name: `${name} (wall)`,
            measuredMs: median(runs.map((x) => x.wall)),
            targetMs: TARGET_MS,
            baselineMs: median(node.map((x) => x.wall)),
            baselineName: 'node -e 0',
            runs: RUNS,
          },
          {
            name: `${name} (CPU)`,
            measuredMs: mean(runs.map((x) => x.cpu)),
            targetMs: TARGET_MS,
            baselineMs: mean(node.map((x) => x.cpu)),
            baselineName: 'node -e 0',
            runs: RUNS,
          },
        ];
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
