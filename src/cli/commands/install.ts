/**
 * `tend install [--system] [--enable] [--dry-run]` and `tend uninstall`: a systemd unit that runs
 * `tend watch` for this project, so its VMs are converged again after a reboot. `--dry-run`
 * writes nothing and returns the unit text and the systemctl commands for the CLI to print.
 */
import { realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { UsageError } from '../../../schemas/errors.js';
import { applyInstall, applyUninstall, installPlan, uninstallPlan, type Runner, type UnitPlan } from '../../systemd/unit.js';
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

export async function uninstallCommand(o: InstallCommandOptions): Promise<InstallResult> {
  const ctx = await loadContext(o);
  const scope = o.system ? 'system' : 'user';
  const plan = uninstallPlan(scope, ctx.project.name, ctx.project.dir, ctx.env);
  if (!o.dryRun) await applyUninstall(plan, o.run);
  return { ...plan, scope, dryRun: o.dryRun ?? false };
}

export function renderInstall(r: InstallResult, verb: 'install' | 'uninstall'): string {
  const cmds = r.commands.map((c) => `  ${c.join(' ')}`).join('\n');
  if (r.dryRun) {
    return verb === 'install'
      ? `# ${r.path} (not written: --dry-run)\n${r.text}\n# then:\n${cmds}`
      : `# would delete ${r.path}\n# and run:\n${cmds}`;
  }
  if (verb === 'uninstall') return `removed ${r.unit} (${r.scope})`;
  const enabled = r.commands.some((c) => c.includes('enable'));
  const hint = enabled ? '' : `\nstart it with: systemctl ${r.scope === 'user' ? '--user ' : ''}enable --now ${r.unit}`;
  const linger = r.scope === 'user' ? '\nto start it at boot without logging in: loginctl enable-linger' : '';
  return `wrote ${r.path}${enabled ? ' and enabled it' : ''}${hint}${linger}`;
}
