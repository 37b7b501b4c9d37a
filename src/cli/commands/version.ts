/** `tend version` (holos): tend's version, Node's, and the QEMU found on PATH. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';

export function tendVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tend' && pkg.version) return pkg.version;
    } catch {
      // not here: look one folder up
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

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
