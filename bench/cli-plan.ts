/**
 * Issue-2 bar (b): `tend plan` on a generated 50-VM project, wall time with Node's start
 * included (< 400 ms), next to `node -e 0` measured in the same run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateProject, median, timeRuns, type Bench, type BenchRow } from './lib.js';

const VMS = 50;
const RUNS = 9;
const CLI = resolve(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');

export const bench: Bench = {
  name: 'cli-plan',
  description: `tend plan, ${VMS} VMs, wall incl. Node start`,
  async run() {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const { dir } = generateProject(VMS);
    const stateDir = mkdtempSync(join(tmpdir(), 'tend-bench-state-'));
    const env = { ...process.env, TEND_STATE_DIR: stateDir };
    try {
      return await measure(dir, env);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
};

async function measure(dir: string, env: NodeJS.ProcessEnv): Promise<BenchRow[]> {
  const out = execFileSync(process.execPath, [CLI, 'plan', '--json'], { cwd: dir, env, encoding: 'utf8' });
  const entries = (JSON.parse(out) as { entries: unknown[] }).entries.length;
  if (entries !== VMS) throw new Error(`tend plan printed ${entries} entries, expected ${VMS}`);
  const baseline = await timeRuns(RUNS, () => execFileSync(process.execPath, ['-e', '0']));
  const version = await timeRuns(RUNS, () => execFileSync(process.execPath, [CLI, '--version'], { stdio: 'ignore' }));
  const times = await timeRuns(RUNS, () => execFileSync(process.execPath, [CLI, 'plan'], { cwd: dir, env, stdio: 'ignore' }));
  return [
    {
      name: `tend plan ${VMS} VMs (wall)`,
      measuredMs: median(times),
      targetMs: 400,
      baselineMs: median(baseline),
      baselineName: 'node -e 0',
      runs: RUNS,
    },
    // the CLI shell alone (commander, no command module): what every command pays before its own work
    {
      name: 'tend --version (wall)',
      measuredMs: median(version),
      targetMs: 150,
      baselineMs: median(baseline),
      baselineName: 'node -e 0',
      runs: RUNS,
    },
  ];
}
