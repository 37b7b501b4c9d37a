/**
 * `npm run bench`: runs each benchmark module in sequence and prints measured values, targets
 * and ratios. Add a benchmark as bench/<name>.ts exporting `bench: Bench` and list it below.
 * `--only NAME` runs one (repeatable); `cold` (boot's issue 15 §3c rows alone) runs only when named.
 * Exits 1 when a bar is missed or a benchmark fails.
 */
import type { Bench, BenchRow } from './lib.js';

const MODULES: Record<string, () => Promise<{ bench: Bench }>> = {
  'load-plan': () => import('./load-plan.js'),
  validate: () => import('./validate.js'),
  'cli-plan': () => import('./cli-plan.js'),
  'cli-start': () => import('./cli-start.js'),
  ls: () => import('./ls.js'),
  boot: () => import('./boot.js'),
  cold: () => import('./boot.js').then((m) => ({ bench: m.coldBench })),
  provision: () => import('./provision.js'),
  watch: () => import('./watch.js'),
  libvirt: () => import('./libvirt.js'),
  soak: () => import('./soak.js'),
  warm: () => import('./warm.js'),
};

/** Parts of another benchmark, run only when named with --only (a full run has them in that one). */
const ONLY_WHEN_NAMED = new Set(['cold']);

function args(argv: string[]): { only: string[] } {
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only' && argv[i + 1]) only.push(argv[++i]);
    else if (argv[i].startsWith('--only=')) only.push(argv[i].slice(7));
  }
  return { only };
}

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

function render(rows: (BenchRow & { error?: string })[]): string {
  const head = ['BENCHMARK', 'MEASURED', 'TARGET', 'RATIO', 'BASELINE', 'RESULT'];
  const body = rows.map((r) =>
    r.error
      ? [r.name, '-', fmt(r.targetMs), '-', '-', `ERROR: ${r.error}`]
      : [
          r.name,
          fmt(r.measuredMs),
          `< ${fmt(r.targetMs)}`,
          (r.measuredMs / r.targetMs).toFixed(2),
          r.baselineMs !== undefined ? `${fmt(r.baselineMs)} (${r.baselineName ?? 'baseline'})` : '-',
          r.measuredMs < r.targetMs ? 'ok' : 'MISSED',
        ],
  );
  const all = [head, ...body];
  const w = head.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  return all
    .map((r) =>
      r
        .map((c, i) => c.padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<number> {
  const { only } = args(process.argv.slice(2));
  const unknown = only.filter((n) => !MODULES[n]);
  if (unknown.length) {
    console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(MODULES).join(', ')}`);
    return 2;
  }
  const rows: (BenchRow & { error?: string })[] = [];
  for (const [name, load] of Object.entries(MODULES)) {
    if (only.length ? !only.includes(name) : ONLY_WHEN_NAMED.has(name)) continue;
    const { bench } = await load();
    console.error(`running ${bench.name}: ${bench.description} ...`);
    try {
      rows.push(...(await bench.run()));
    } catch (e) {
      rows.push({ name: bench.name, measuredMs: NaN, targetMs: NaN, runs: 0, error: (e as Error).message });
    }
  }
  console.log(render(rows));
  return rows.every((r) => !r.error && r.measuredMs < r.targetMs) ? 0 : 1;
}

process.exitCode = await main();
