/** `tend version` (holos): tend's version, Node's, and the QEMU found on PATH. */
import { EXIT } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';
import { tendVersion } from '../package-version.js';

export async function versionCommand(): Promise<{ tend: string; node: string; qemu: string | null }> {
  let qemu: string | null = null;
  try {
    const { execa } = await import('execa');
    const r = await execa('qemu-system-x86_64', ['--version'], { timeout: 5000 });
    qemu = /version (\S+)/.exec(r.stdout)?.[1] ?? null;
  } catch {
    qemu = null;
  }
  return { tend: tendVersion(), node: process.versions.node, qemu };
}

export const command: CliCommand = {
  name: 'version',
  description: "tend's version, and the Node and QEMU it runs with",
  examples: ['tend version', 'tend version --json'],
  async run({ g, io }) {
    const v = await versionCommand();
    if (g.json) io.json(v);
    else io.out(`tend ${v.tend}\nnode ${v.node}\nqemu ${v.qemu ?? 'not found on PATH'}`);
    return EXIT.ok;
  },
};
