/**
 * The systemd unit that keeps `tend watch` running for a project across reboots (`tend install`).
 * User scope (default): ~/.config/systemd/user, `systemctl --user`, WantedBy=default.target
 * (needs `loginctl enable-linger` to start at boot without a login). System scope (--system):
 * /etc/systemd/system, User= the installing user, WantedBy=multi-user.target.
 *
 * KillMode=process: stopping or restarting the service ends only `tend watch`; the VMs' QEMU
 * processes (started detached, but in the service's cgroup) keep running, as they do when watch
 * is stopped by hand.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../../schemas/errors.js';
import { shortHash } from '../state/paths.js';

export type UnitScope = 'user' | 'system';

export interface UnitSpec {
  scope: UnitScope;
  projectName: string;
  /** the project's directory (WorkingDirectory) */
  projectDir: string;
  /** absolute project files, passed with -f */
  files: string[];
  /** absolute state dir, passed with --state-dir */
  stateDir: string;
  /** argv that runs the tend CLI, e.g. [process.execPath, '/usr/lib/tend/dist/src/cli/main.js'] */
  tend: string[];
  /** system scope: the user the service runs as */
  user?: string;
  /** extra `tend watch` flags (--prune, --resync 1m) */
  watchArgs?: string[];
}

/** "tend-demo-1a2b3c4d.service": the project's name plus a hash of its directory. */
export function unitName(projectName: string, projectDir: string): string {
  return `tend-${projectName}-${shortHash(projectDir)}.service`;
}

export function unitDir(scope: UnitScope, env: NodeJS.ProcessEnv = process.env): string {
  if (scope === 'system') return '/etc/systemd/system';
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'systemd', 'user');
}

/** One ExecStart word: quoted when needed; `%` and `$` escaped so systemd passes them as is. */
export function systemdWord(s: string): string {
  const escaped = s.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function unitText(u: UnitSpec): string {
  const argv = [...u.tend, '--json', '--state-dir', u.stateDir, ...u.files.flatMap((f) => ['-f', f]), 'watch', ...(u.watchArgs ?? [])];
  const lines = [
    '# Written by `tend install`; remove with `tend uninstall`.',
    '[Unit]',
    `Description=tend watch: keep the VMs of project ${u.projectName} (${u.projectDir}) converged`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    ...(u.scope === 'system' && u.user ? [`User=${u.user}`] : []),
    `WorkingDirectory=${systemdWord(u.projectDir)}`,
    `ExecStart=${argv.map(systemdWord).join(' ')}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=5',
    '# stop ends tend watch only: the VMs keep running',
    'KillMode=process',
    'TimeoutStopSec=10',
    '',
    '[Install]',
    `WantedBy=${u.scope === 'system' ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}

export type Runner = (argv: string[]) => Promise<void>;

export const runCommand: Runner = (argv) =>
  new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    execFile(cmd, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err)
        reject(new BackendError('SystemctlFailed', `${argv.join(' ')} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve();
    });
  });

export interface UnitPlan {
  unit: string;
  path: string;
  text: string;
  /** systemctl invocations, in order */
  commands: string[][];
}

function systemctl(scope: UnitScope, ...args: string[]): string[] {
  return ['systemctl', ...(scope === 'user' ? ['--user'] : []), ...args];
}

export function installPlan(u: UnitSpec, o: { enable: boolean; env?: NodeJS.ProcessEnv }): UnitPlan {
  const unit = unitName(u.projectName, u.projectDir);
  const commands = [systemctl(u.scope, 'daemon-reload')];
  if (o.enable) commands.push(systemctl(u.scope, 'enable', '--now', unit));
  return { unit, path: join(unitDir(u.scope, o.env), unit), text: unitText(u), commands };
}

export function uninstallPlan(scope: UnitScope, projectName: string, projectDir: string, env?: NodeJS.ProcessEnv): UnitPlan {
  const unit = unitName(projectName, projectDir);
  return {
    unit,
    path: join(unitDir(scope, env), unit),
    text: '',
    commands: [systemctl(scope, 'disable', '--now', unit), systemctl(scope, 'daemon-reload')],
  };
}

/** Write the unit and run its systemctl commands. */
export async function applyInstall(p: UnitPlan, run: Runner = runCommand): Promise<void> {
  await mkdir(join(p.path, '..'), { recursive: true });
  await writeFile(p.path, p.text, { mode: 0o644 });
  for (const c of p.commands) await run(c);
}

/** Disable/stop the unit (a unit that is not loaded is fine), delete it, reload systemd. */
export async function applyUninstall(p: UnitPlan, run: Runner = runCommand): Promise<void> {
  const [disable, ...rest] = p.commands;
  if (disable) await run(disable).catch(() => undefined);
  await rm(p.path, { force: true });
  for (const c of rest) await run(c);
}
