/**
 * `tend install [--system] [--enable] [--dry-run]`: a systemd unit that runs `tend watch` for this
 * project, so its VMs are converged again after a reboot (`tend uninstall` removes it). `--dry-run`
 * writes nothing and returns the unit text and the systemctl commands for the CLI to print.
 */
import { realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';
import { applyInstall, installPlan, type Runner, type UnitPlan } from '../../systemd/unit.js';
import { loadContext, type GlobalOptions } from '../context.js';

export interface InstallCommandOptions extends GlobalOptions {
  system?: boolean;
  /** also `systemctl enable --now` */
  enable?: boolean;
  dryRun?: boolean;
  /** the argv that runs tend (default: this node and this CLI script) */
  tend?: string[];
  /** extra `tend watch` flags for the unit */
  watchArgs?: string[];
  /** test seam: runs systemctl */
  run?: Runner;
}

export interface InstallResult extends UnitPlan {
  scope: 'user' | 'system';
  dryRun: boolean;
}

function tendArgv(o: InstallCommandOptions): string[] {
  if (o.tend) return o.tend;
  const script = process.argv[1];
  if (!script) throw new UsageError('cannot tell how tend was started: pass the command to run', 'NoTendPath');
  let abs = script;
  try {
    abs = realpathSync(script);
  } catch {
    // keep it as given
  }
  return [process.execPath, abs];
}

export async function installCommand(o: InstallCommandOptions): Promise<InstallResult> {
  const ctx = await loadContext(o);
  const scope = o.system ? 'system' : 'user';
  const plan = installPlan(
    {
      scope,
      projectName: ctx.project.name,
      projectDir: ctx.project.dir,
      files: ctx.project.files,
      stateDir: ctx.stateRoot,
      tend: tendArgv(o),
      ...(scope === 'system' ? { user: userInfo().username } : {}),
      ...(o.watchArgs ? { watchArgs: o.watchArgs } : {}),
    },
    { enable: o.enable ?? false, env: ctx.env },
  );
  if (!o.dryRun) await applyInstall(plan, o.run);
  return { ...plan, scope, dryRun: o.dryRun ?? false };
}

export function renderInstall(r: InstallResult): string {
  const cmds = r.commands.map((c) => `  ${c.join(' ')}`).join('\n');
  if (r.dryRun) return `# ${r.path} (not written: --dry-run)\n${r.text}\n# then:\n${cmds}`;
  const enabled = r.commands.some((c) => c.includes('enable'));
  const hint = enabled ? '' : `\nstart it with: systemctl ${r.scope === 'user' ? '--user ' : ''}enable --now ${r.unit}`;
  const linger = r.scope === 'user' ? '\nto start it at boot without logging in: loginctl enable-linger' : '';
  return `wrote ${r.path}${enabled ? ' and enabled it' : ''}${hint}${linger}`;
}

export const command: CliCommand = {
  name: 'install',
  description: 'write a systemd unit that runs `tend watch` for this project (survives reboots)',
  examples: ['tend install --enable', 'tend install --system --dry-run'],
  configure: (c) =>
    c
      .option('--system', 'system unit (/etc/systemd/system) instead of a user unit')
      .option('--dry-run', 'print the unit and the systemctl commands; change nothing')
      .option('--enable', 'also `systemctl enable --now` it'),
  async run({ g, opts, io }) {
    const o = opts as { system?: boolean; dryRun?: boolean; enable?: boolean };
    const r = await installCommand({ ...g, system: o.system ?? false, dryRun: o.dryRun ?? false, enable: o.enable ?? false });
    if (g.json) io.json(r);
    else io.out(renderInstall(r));
    return EXIT.ok;
  },
};
