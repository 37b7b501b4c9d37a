/**
 * Issue-3 bars, on real guests (the Debian 12 image built from Debian packages, TCG):
 *  - `tend up` to SSH-ready ÷ a hand-written raw QEMU command line booting the same image with
 *    the same seed, to the same readiness (SSH login + cloud-init done): ≤ 1.05
 *  - `tend converge` on an already-converged project: < 300 ms wall
 *  - three VMs brought up in parallel ÷ the same three one after another: ≤ 0.65
 * Each bar is printed as measured vs target, where the target is the bar applied to the
 * baseline measured in this same run.
 */
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { waitForSsh } from '../src/ssh/ready.js';
import { bootRaw, findImage, freePort, makeOverlay, runCli, tempProject, type TempProject } from '../test/e2e/helpers.js';
import { median, nowMs, timeRuns, type Bench, type BenchRow } from './lib.js';

const MEMORY = 1024;

async function tend(p: TempProject, args: string[]): Promise<number> {
  const t0 = nowMs();
  const r = await runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`tend ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return nowMs() - t0;
}

async function vmDir(p: TempProject, vm: string): Promise<string> {
  const projects = join(p.stateDir, 'projects');
  const [proj] = await readdir(projects);
  return join(projects, proj, 'vms', vm);
}

/** Boot the same image with the seed tend generated, by hand, and time it to the same readiness. */
async function rawBoot(p: TempProject, image: string, seedFrom: string, user: string, n: number): Promise<number> {
  const disk = join(p.scratch, `raw-${n}.qcow2`);
  const seed = join(p.scratch, `raw-seed-${n}.iso`);
  await copyFile(join(seedFrom, 'seed.iso'), seed);
  await makeOverlay(image, disk);
  const sshPort = await freePort();
  const t0 = nowMs();
  const qemu = bootRaw({ disk, seed, sshPort, serialLog: join(p.scratch, `raw-${n}.log`), memoryMb: MEMORY, cpus: 1 });
  try {
    await waitForSsh({
      host: '127.0.0.1',
      port: sshPort,
      user,
      privateKey: join(seedFrom, 'id_ed25519'),
      timeoutMs: 600_000,
      cloudInit: true,
    });
    return nowMs() - t0;
  } finally {
    qemu.kill('SIGKILL');
  }
}

const oneVm = (image: string) =>
  `name: bench\nservices:\n  solo:\n    image: ${image}\n    vm: { vcpu: 1, memory_mb: ${MEMORY} }\n    cloud_init: { user: bench }\n`;

const threeVms = (image: string) =>
  [
    'name: trio',
    'services:',
    ...['a', 'b', 'c'].flatMap((n) => [`  ${n}:`, `    image: ${image}`, '    vm: { vcpu: 1, memory_mb: 512 }']),
  ].join('\n') + '\n';

export const bench: Bench = {
  name: 'boot',
  description: 'real guests under TCG: tend up vs raw QEMU, converged converge, parallel vs serial (several minutes)',
  async run(): Promise<BenchRow[]> {
    const image = await findImage();
    const rows: BenchRow[] = [];

    const p = await tempProject({ 'tend.yaml': oneVm(image) });
    try {
      const tendTimes: number[] = [];
      const rawTimes: number[] = [];
      for (let i = 0; i < 2; i++) {
        tendTimes.push(await tend(p, ['up']));
        const dir = await vmDir(p, 'solo');
        if (i === 1) {
          const converged = await timeRuns(5, () => tend(p, ['up']));
          rows.push({ name: 'converge, already converged (wall)', measuredMs: median(converged), targetMs: 300, runs: 5 });
        }
        rawTimes.push(await rawBoot(p, image, dir, 'bench', i));
        await tend(p, ['down', '--destroy']);
      }
      const raw = median(rawTimes);
      rows.push({
        name: 'tend up to SSH-ready (≤ 1.05 × raw)',
        measuredMs: median(tendTimes),
        targetMs: raw * 1.05,
        baselineMs: raw,
        baselineName: 'raw qemu, same seed',
        runs: 2,
      });
    } finally {
      await p.cleanup();
    }

    const trio = await tempProject({ 'tend.yaml': threeVms(image) });
    try {
      const serial =
        (await tend(trio, ['up', '--name', 'a'])) + (await tend(trio, ['up', '--name', 'b'])) + (await tend(trio, ['up', '--name', 'c']));
      await tend(trio, ['down', '--destroy']);
      const parallel = await tend(trio, ['up']);
      await tend(trio, ['down', '--destroy']);
      rows.push({
        name: '3 VMs in parallel (≤ 0.65 × serial)',
        measuredMs: parallel,
        targetMs: serial * 0.65,
        baselineMs: serial,
        baselineName: 'one after another',
        runs: 1,
      });
    } finally {
      await trio.cleanup();
    }
    return rows;
  },
};
