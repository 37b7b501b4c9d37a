/** `tend uninstall [--system] [--dry-run]`: stop, disable and delete the systemd unit of `tend install`. */
import { EXIT } from '../../../schemas/errors.js';
import { applyUninstall, uninstallPlan, type Runner, type UnitPlan } from '../../systemd/unit.js';
import type { CliCommand } from '../command.js';
import { loadContext, type GlobalOptions } from '../context.js';

export interface UninstallCommandOptions extends GlobalOptions {
  system?: boolean;
  dryRun?: boolean;
  /** test seam: runs systemctl */
  run?: Runner;
}

export interface UninstallResult extends UnitPlan {
  scope: 'user' | 'system';
  dryRun: boolean;
}

export async function uninstallCommand(o: UninstallCommandOptions): Promise<UninstallResult> {
  const ctx = await loadContext(o);
  const scope = o.system ? 'system' : 'user';
  const plan = uninstallPlan(scope, ctx.project.name, ctx.project.dir, ctx.env);
  if (!o.dryRun) await applyUninstall(plan, o.run);
  return { ...plan, scope, dryRun: o.dryRun ?? false };
}

export function renderUninstall(r: UninstallResult): string {
  if (!r.dryRun) return `removed ${r.unit} (${r.scope})`;
  return `# would delete ${r.path}\n# and run:\n${r.commands.map((c) => `  ${c.join(' ')}`).join('\n')}`;
}

export const command: CliCommand = {
  name: 'uninstall',
  description: 'remove the systemd unit of `tend install`',
  examples: ['tend uninstall'],
  configure: (c) =>
    c
      .option('--system', 'system unit (/etc/systemd/system) instead of a user unit')
      .option('--dry-run', 'print the unit and the systemctl commands; change nothing'),
  async run({ g, opts, io }) {
    const o = opts as { system?: boolean; dryRun?: boolean };
    const r = await uninstallCommand({ ...g, system: o.system ?? false, dryRun: o.dryRun ?? false });
    if (g.json) io.json(r);
    else io.out(renderUninstall(r));
    return EXIT.ok;
  },
};
