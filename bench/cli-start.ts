/**
 * Issue-14 bars: `tend --help` and `tend validate` of a 3-VM project, < 150 ms wall each with
 * Node's start included, next to `node -e 0` measured in the same run (the runs interleave, so a
 * busy machine weighs on all of them alike). Validate runs on a 3-VM tend.yaml and on the 3-VM
 * VMFile.kdl of examples/vmctl-full (the KDL parser is the larger one to load). Each is also
 * reported as the child's CPU time: on a machine shared with other jobs, wall time measures the
 * neighbours too, and CPU time is close to what the command takes on an idle one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateProject, median, nowMs, type Bench, type BenchRow } from './lib.js';

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
  description: 'tend --help and tend validate (3 VMs), wall incl. Node start',
  async run() {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const { dir } = generateProject(3);
    const kdlDir = join(ROOT, 'examples', 'vmctl-full');
    try {
      // both projects must be valid, or the bar would time an error path
      for (const cwd of [dir, kdlDir]) execFileSync(process.execPath, [CLI, 'validate'], { cwd, stdio: 'ignore' });
      const cases = {
        node: ['-e', '0'],
        help: [CLI, '--help'],
        yaml: [CLI, 'validate'],
        kdl: [CLI, 'validate'],
      } as const;
      const cwd = { node: undefined, help: undefined, yaml: dir, kdl: kdlDir };
      const t = { node: [], help: [], yaml: [], kdl: [] } as Record<keyof typeof cases, { wall: number; cpu: number }[]>;
      for (let i = 0; i < RUNS; i++) for (const k of Object.keys(cases) as (keyof typeof cases)[]) t[k].push(run([...cases[k]], cwd[k]));
      // wall is the bar; CPU (mean of the child's user + system time) is what it costs on an idle machine
      const rows = (name: string, k: keyof typeof cases): BenchRow[] => [
        {
          name: `${name} (wall)`,
          measuredMs: median(t[k].map((x) => x.wall)),
          targetMs: TARGET_MS,
          baselineMs: median(t.node.map((x) => x.wall)),
          baselineName: 'node -e 0',
          runs: RUNS,
        },
        {
          name: `${name} (CPU)`,
          measuredMs: mean(t[k].map((x) => x.cpu)),
          targetMs: TARGET_MS,
          baselineMs: mean(t.node.map((x) => x.cpu)),
          baselineName: 'node -e 0',
          runs: RUNS,
        },
      ];
      return [
        ...rows('tend --help', 'help'),
        ...rows('tend validate 3 VMs, tend.yaml', 'yaml'),
        ...rows('tend validate 3 VMs, VMFile.kdl', 'kdl'),
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
