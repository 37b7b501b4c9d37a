/**
 * Issue-4 bars, on a real guest (the Debian 12 image built from Debian packages, TCG), through
 * the built CLI with `--json` logs:
 *  - from SSH-ready to the first provisioning step starting: < 1 s. SSH-ready is the
 *    `VmProvisioning` event (readiness passed: banner, login, cloud-init, host key); the step
 *    starts at its "step 1/4" line, written just before the command is sent. Samples: the first
 *    `tend up`, then `tend provision` runs (each re-checks readiness, then re-runs every step).
 *  - a second converge of the provisioned VM with nothing changed: < 1 s wall, and no command
 *    run in the guest — counted from sshd's own log in the guest: the only new sessions are the
 *    ones the bench opens itself to count.
 */
import { median, nowMs, type Bench, type BenchRow } from './lib.js';
import { findImage, runCli, tempProject, type TempProject } from '../test/e2e/helpers.js';

const project = (image: string) =>
  [
    'name: provbench',
    'services:',
    '  solo:',
    `    image: ${image}`,
    '    vm: { vcpu: 1, memory_mb: 1024 }',
    '    provision:',
    '      - shell: echo one >> ~/runs.log',
    '      - script: ./two.sh',
    '      - file: { source: ./conf.txt, destination: /tmp/conf.txt }',
    '      - shell: echo four >> ~/runs.log',
    '',
  ].join('\n');

async function tend(p: TempProject, args: string[]): Promise<{ ms: number; logs: string }> {
  const t0 = nowMs();
  const r = await runCli(['--json', ...args], { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 900_000 });
  const ms = nowMs() - t0;
  if (r.code !== 0) throw new Error(`tend ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return { ms, logs: r.stderr };
}

/** ms from the VmProvisioning event to the "step 1/N" line, from the JSON log lines. */
function readyToFirstStep(logs: string): number {
  let ready: number | undefined;
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { time?: number; reason?: string; msg?: string };
    if (rec.reason === 'VmProvisioning') ready = rec.time;
    if (ready !== undefined && typeof rec.msg === 'string' && rec.msg.startsWith('step 1/') && rec.time !== undefined)
      return rec.time - ready;
  }
  throw new Error(`no VmProvisioning event followed by a "step 1/" line in:\n${logs.slice(-3000)}`);
}

/** SSH logins sshd accepted in the guest so far (including the one this count opens). */
async function guestLogins(p: TempProject): Promise<number> {
  const r = await runCli(['exec', 'solo', '--', 'sudo', 'journalctl', '_COMM=sshd', '--no-pager', '-o', 'cat'], {
    cwd: p.dir,
    stateDir: p.stateDir,
  });
  if (r.code !== 0) throw new Error(`counting sshd logins failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('Accepted publickey')).length;
}

export const bench: Bench = {
  name: 'provision',
  description: 'a real guest under TCG: SSH-ready → first provisioning step, second converge of a provisioned VM (a few minutes)',
  async run(): Promise<BenchRow[]> {
    const image = await findImage();
    const p = await tempProject({ 'tend.yaml': project(image), 'two.sh': '#!/bin/sh\necho two >> ~/runs.log\n', 'conf.txt': 'v=1\n' });
    try {
      const gaps = [readyToFirstStep((await tend(p, ['up'])).logs)];
      for (let i = 0; i < 4; i++) gaps.push(readyToFirstStep((await tend(p, ['provision'])).logs));

      const walls: number[] = [];
      const before = await guestLogins(p);
      for (let i = 0; i < 5; i++) {
        const r = await tend(p, ['up']);
        if (/"msg":"step \d/.test(r.logs)) throw new Error(`a second converge ran a provision step:\n${r.logs.slice(-2000)}`);
        walls.push(r.ms);
      }
      const sessions = (await guestLogins(p)) - before - 1;
      if (sessions !== 0) throw new Error(`5 converges with nothing changed opened ${sessions} SSH session(s) in the guest`);
      await tend(p, ['down', '--destroy']);
      return [
        { name: 'SSH-ready → first provision step', measuredMs: median(gaps), targetMs: 1000, runs: gaps.length },
        {
          name: 'converge of a provisioned VM, nothing changed (wall, 0 guest sessions)',
          measuredMs: median(walls),
          targetMs: 1000,
          runs: walls.length,
        },
      ];
    } finally {
      await p.cleanup();
    }
  },
};
