#!/usr/bin/env node
/**
 * The `tend` entry: parse the command line, call the command's function, print its result, and
 * turn errors into messages and exit codes. This is the one place that prints and exits.
 * Command modules are imported lazily inside each action so `tend --version` and `tend plan`
 * start fast (ssh2, xstate, pino are only loaded by the commands that use them).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { EXIT, TendError, ValidationError } from '../../schemas/errors.js';
import { formatDiagnostic, type Diagnostic } from '../../schemas/diagnostic.js';
import type { GlobalOptions } from './context.js';
import { parseDuration } from './output.js';
import { DEFAULT_TIMEOUTS, TIMEOUT_ENV } from '../timeouts.js';
import type { TendEvent } from '../../schemas/ports.js';

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
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

const out = (s: string): void => {
  if (s) process.stdout.write(s.endsWith('\n') ? s : s + '\n');
};
const err = (s: string): void => {
  process.stderr.write(s.endsWith('\n') ? s : s + '\n');
};
const printJson = (v: unknown): void => out(JSON.stringify(v, null, 2));

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new TendError('BadUsage', `--timeout wants seconds, got "${v}"`, EXIT.usage);
  return n;
}

/** Readiness stage limits for every VM a command brings up (src/timeouts.ts). */
const STAGE_FLAGS = [
  ['start', '--start-timeout', 'QEMU started until QMP answers'],
  ['ssh', '--ssh-timeout', "until the guest's sshd answers"],
  ['login', '--login-timeout', 'from the SSH banner until a login works'],
  ['cloudInit', '--cloud-init-timeout', 'from the first login until cloud-init is done'],
] as const;

function withStageTimeouts(c: Command): Command {
  for (const [stage, flag, what] of STAGE_FLAGS) {
    c.option(
      `${flag} <duration>`,
      `time limit: ${what} (default: the VM's \`timeouts\`, else $${TIMEOUT_ENV[stage]}, else ${DEFAULT_TIMEOUTS[stage]}s)`,
    );
  }
  return c;
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

interface Runtime {
  signal: AbortSignal;
  /** exit code decided by a command's result (e.g. converge not ok) */
  exitCode: number;
}

async function globals(cmd: Command, rt: Runtime, withLog = false): Promise<GlobalOptions> {
  const o = cmd.optsWithGlobals<{
    file?: string[];
    json?: boolean;
    stateDir?: string;
    lockTimeout?: string;
    wait?: boolean;
    verbose?: boolean;
  }>();
  const g: GlobalOptions = {
    json: o.json ?? false,
    lockTimeout: o.lockTimeout ?? '5m',
    wait: o.wait !== false,
    verbose: o.verbose ?? false,
    signal: rt.signal,
    ...(o.file ? { file: o.file } : {}),
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
  };
  const flags = o as Record<string, unknown>;
  for (const [stage, flag] of STAGE_FLAGS) {
    const v = flags[`${stage}Timeout`];
    if (typeof v !== 'string') continue;
    const ms = parseDuration(v, flag);
    if (ms <= 0) throw new TendError('BadDuration', `${flag} must be more than 0s, got "${v}"`, EXIT.usage);
    (g.timeouts ??= {})[stage] = ms;
  }
  if (withLog) {
    const { createLogger } = await import('../log.js');
    // one-shot commands log human lines unless --json (CI logs read better); `watch` decides by TTY
    const log = createLogger({ json: g.json ?? false, verbose: g.verbose ?? false, tty: true });
    g.log = log;
    // provisioning output streams live: "web | line" on a terminal, a log record with --json
    g.onGuestOutput = (vm, line, stream) => {
      if (g.json) log.info({ vm, stream }, line);
      else if (stream === 'status') log.info({ vm }, line);
      else err(`${vm} | ${line}`);
    };
  }
  return g;
}

/** Reconciler events as log lines (human on a TTY, JSON lines otherwise). */
function logEvent(g: GlobalOptions): (e: TendEvent) => void {
  return (e) => g.log?.[e.type === 'Warning' ? 'warn' : 'info']({ vm: e.vm, reason: e.reason }, e.message);
}

export function buildProgram(rt: Runtime): Command {
  const program = new Command('tend')
    .description('Keep the QEMU VMs declared in your project files running: edit, save, converge.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-f, --file <path>', 'project file (repeatable); default: discover tend.yaml, holos.yaml, VMFile.kdl, vms.yml', collect)
    .option('--json', 'machine-readable output (JSON on stdout, JSON-lines logs)')
    .option('--state-dir <dir>', 'state folder (default $TEND_STATE_DIR, else $XDG_DATA_HOME/tend)')
    .option('--lock-timeout <duration>', 'how long mutating commands wait for the project lock', '5m')
    .option('--no-wait', 'fail at once when the project lock is held')
    .option('-v, --verbose', 'debug logs; stack traces on unexpected errors')
    .addHelpText('after', examples('tend validate', 'tend plan', 'tend up', 'tend ps', 'tend exec web -- uname -a', 'tend help up'))
    .showHelpAfterError('(run `tend help` for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('validate')
    .description('check the project files and exit (0: valid, 3: errors, each with file:line:col)')
    .addHelpText('after', examples('tend validate', 'tend validate -f VMFile.kdl --json'))
    .action(async (_o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { validateCommand } = await import('./commands/validate.js');
      const r = await validateCommand(g);
      if (g.json) {
        printJson({ ok: r.ok, files: r.files, vms: r.vms, diagnostics: r.diagnostics });
        if (!r.ok) rt.exitCode = EXIT.invalidInput;
        return;
      }
      if (!r.ok) throw new ValidationError(r.diagnostics);
      for (const d of r.diagnostics) err(formatDiagnostic(d));
      out(`valid: ${r.vms.length} VM${r.vms.length === 1 ? '' : 's'} (${r.vms.join(', ')}) in ${r.files.join(', ')}`);
    });

  program
    .command('plan')
    .description('show what converge would do, without doing it')
    .option('--recreate', 'plan recreating VMs whose image or disk shrink needs a new disk')
    .option('--prune', 'plan deleting VMs no longer declared')
    .option('--name <vm>', 'only this VM (repeatable)', collect)
    .addHelpText('after', examples('tend plan', 'tend plan --recreate --prune', 'tend plan --json | jq .entries'))
    .action(async (o: { recreate?: boolean; prune?: boolean; name?: string[] }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { planCommand, renderPlan } = await import('./commands/plan.js');
      const r = await planCommand({ ...g, recreate: o.recreate ?? false, prune: o.prune ?? false, ...(o.name ? { names: o.name } : {}) });
      if (g.json) printJson(r);
      else out(renderPlan(r));
    });

  withStageTimeouts(program.command('converge').alias('up'))
    .description('make every declared VM real (create, start, restart, provision), then exit')
    .option('--name <vm>', 'only this VM (and what it depends on); repeatable', collect)
    .option('--no-provision', 'skip provision steps')
    .option('--recreate', 'replace disks where the image changed or the disk shrank')
    .option('--prune', 'stop and delete VMs no longer declared')
    .addHelpText('after', examples('tend up', 'tend converge --name web --no-provision', 'tend up --recreate --prune'))
    .action(async (o: { name?: string[]; provision?: boolean; recreate?: boolean; prune?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { convergeCommand, renderConverge } = await import('./commands/converge.js');
      const r = await convergeCommand({
        ...g,
        ...(o.name ? { names: o.name } : {}),
        provision: o.provision !== false,
        recreate: o.recreate ?? false,
        prune: o.prune ?? false,
        onEvent: logEvent(g),
      });
      if (g.json) printJson(r);
      else out(renderConverge(r));
      if (!r.ok) rt.exitCode = EXIT.failure;
    });

  withStageTimeouts(program.command('watch'))
    .description('converge, then keep converging on every save, VM crash and resync (Ctrl-C stops watching; VMs keep running)')
    .option('--resync <duration>', 'periodic full converge; 0 turns it off', '30s')
    .option('--debounce <duration>', 'quiet time after a file save before reconciling', '50ms')
    .option('--no-provision', 'skip provision steps')
    .option('--recreate', 'replace disks where the image changed or the disk shrank')
    .option('--prune', 'stop and delete VMs no longer declared')
    .addHelpText('after', examples('tend watch', 'tend watch --resync 1m --prune', 'tend watch --json | jq .reason'))
    .action(async (o: { resync: string; debounce: string; provision?: boolean; recreate?: boolean; prune?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { watchCommand, renderWatchEvent } = await import('./commands/watch.js');
      // human lines on a terminal; one JSON event per line with --json or under systemd/CI
      const json = (g.json ?? false) || !process.stdout.isTTY;
      await watchCommand({
        ...g,
        resync: o.resync,
        debounce: o.debounce,
        provision: o.provision !== false,
        recreate: o.recreate ?? false,
        prune: o.prune ?? false,
        onEvent: (e) => out(renderWatchEvent(e, json)),
        subscribeReload: (reload) => {
          const onHup = (): void => reload();
          process.on('SIGHUP', onHup);
          return () => process.off('SIGHUP', onHup);
        },
      });
    });

  for (const verb of ['install', 'uninstall'] as const) {
    const c = program
      .command(verb)
      .description(
        verb === 'install'
          ? 'write a systemd unit that runs `tend watch` for this project (survives reboots)'
          : 'remove the systemd unit of `tend install`',
      )
      .option('--system', 'system unit (/etc/systemd/system) instead of a user unit')
      .option('--dry-run', 'print the unit and the systemctl commands; change nothing');
    if (verb === 'install') c.option('--enable', 'also `systemctl enable --now` it');
    c.addHelpText(
      'after',
      verb === 'install' ? examples('tend install --enable', 'tend install --system --dry-run') : examples('tend uninstall'),
    ).action(async (o: { system?: boolean; dryRun?: boolean; enable?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { installCommand, uninstallCommand, renderInstall } = await import('./commands/install.js');
      const opts = { ...g, system: o.system ?? false, dryRun: o.dryRun ?? false, enable: o.enable ?? false };
      const r = verb === 'install' ? await installCommand(opts) : await uninstallCommand(opts);
      if (g.json) printJson(r);
      else out(renderInstall(r, verb));
    });
  }

  program
    .command('down')
    .argument('[names...]', 'only these VMs (a `tend run` VM by its name: docs/cli.md)')
    .description('stop every VM of the project, dependents first (`tend up` starts them again)')
    .option('--destroy', "also delete the VMs (disks, seeds, keys; a `tend run` VM's folder too)")
    .option('--volumes', 'also delete named volumes (implies --destroy)')
    .addHelpText('after', examples('tend down', 'tend down --destroy --volumes', 'tend down debian-12-3f2a --destroy'))
    .action(async (names: string[], o: { destroy?: boolean; volumes?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { downCommand } = await import('./commands/down.js');
      const { renderConverge } = await import('./commands/converge.js');
      const r = await downCommand({
        ...g,
        ...(names.length > 0 ? { names } : {}),
        destroy: o.destroy ?? false,
        volumes: o.volumes ?? false,
        onEvent: logEvent(g),
      });
      if (g.json) printJson(r);
      else out(renderConverge(r));
      if (!r.ok) rt.exitCode = EXIT.failure;
    });

  withStageTimeouts(program.command('start'))
    .argument('<name>', 'VM name')
    .description('clear a `tend stop` and converge this VM')
    .option('--no-provision', 'skip provision steps')
    .addHelpText('after', examples('tend start web'))
    .action(async (name: string, o: { provision?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { startCommand } = await import('./commands/start.js');
      const { renderConverge } = await import('./commands/converge.js');
      const r = await startCommand({ ...g, name, provision: o.provision !== false, onEvent: logEvent(g) });
      if (g.json) printJson(r);
      else out(renderConverge(r));
      if (!r.ok) rt.exitCode = EXIT.failure;
    });

  program
    .command('stop')
    .argument('<name>', 'VM name')
    .description('stop a VM and keep it stopped (also under `tend watch`) until `tend start` or `tend up`')
    .option('--timeout <seconds>', 'wait this long after ACPI powerdown before SIGTERM (default: its stop_grace_period)', seconds)
    .addHelpText('after', examples('tend stop web', 'tend stop web --timeout 5'))
    .action(async (name: string, o: { timeout?: number }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { stopCommand } = await import('./commands/stop.js');
      const { renderVmResult, vmResultOk } = await import('./commands/lifecycle.js');
      const r = await stopCommand({ ...g, name, onEvent: logEvent(g), ...(o.timeout !== undefined ? { timeout: o.timeout } : {}) });
      if (g.json) printJson(r);
      else out(renderVmResult(r));
      if (!vmResultOk(r)) rt.exitCode = EXIT.failure;
    });

  withStageTimeouts(program.command('restart'))
    .argument('<name>', 'VM name')
    .description('stop the VM, then converge it (start, provision)')
    .option('--timeout <seconds>', 'ACPI grace period before SIGTERM', seconds)
    .addHelpText('after', examples('tend restart web'))
    .action(async (name: string, o: { timeout?: number }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { restartCommand } = await import('./commands/restart.js');
      const { renderVmResult, vmResultOk } = await import('./commands/lifecycle.js');
      const r = await restartCommand({ ...g, name, onEvent: logEvent(g), ...(o.timeout !== undefined ? { timeout: o.timeout } : {}) });
      if (g.json) printJson(r);
      else out(renderVmResult(r));
      if (!vmResultOk(r)) rt.exitCode = EXIT.failure;
    });

  const simple = {
    suspend: ['pause the VM (its CPUs stop; memory stays)', async () => (await import('./commands/suspend.js')).suspendCommand],
    resume: ['continue a suspended VM', async () => (await import('./commands/resume.js')).resumeCommand],
    destroy: [
      'stop the VM and delete its disk, seed and keys (named volumes are kept)',
      async () => (await import('./commands/destroy.js')).destroyCommand,
    ],
  } as const;
  for (const [verb, [description, load]] of Object.entries(simple)) {
    program
      .command(verb)
      .argument('<name>', 'VM name')
      .description(description)
      .addHelpText('after', examples(`tend ${verb} web`))
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const g = await globals(cmd, rt, true);
        const run = await load();
        const { renderVmResult, vmResultOk } = await import('./commands/lifecycle.js');
        const r = await run({ ...g, name, onEvent: logEvent(g) });
        if (g.json) printJson(r);
        else out(renderVmResult(r));
        if (!vmResultOk(r)) rt.exitCode = EXIT.failure;
      });
  }

  program
    .command('ps')
    .argument('[name]', 'only this VM (also a `tend run` VM)')
    .description('list the VMs: state, readiness, accelerator, ports, SSH, age, conditions')
    .addHelpText('after', examples('tend ps', 'tend ps --json', 'tend ps debian-12-3f2a'))
    .action(async (name: string | undefined, _o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { psCommand, renderPs } = await import('./commands/ps.js');
      const r = await psCommand({ ...g, ...(name ? { name } : {}) });
      if (g.json) printJson(r);
      else out(renderPs(r));
    });

  program
    .command('status')
    .argument('<name>', 'VM name')
    .description('everything known about one VM: spec, process, ports, plan, conditions, state paths')
    .addHelpText('after', examples('tend status web', 'tend status web --json'))
    .action(async (name: string, _o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { statusCommand, renderStatus } = await import('./commands/status.js');
      const r = await statusCommand({ ...g, name });
      if (g.json) printJson(r);
      else out(renderStatus(r));
    });

  program
    .command('events')
    .description('what happened in this project (VmStarted, VmFailed, ...), oldest first')
    .option('--vm <name>', 'only this VM')
    .option('--tail <n>', 'only the last N events', (v: string) => Number.parseInt(v, 10))
    .option('-f, --follow', 'keep printing new events as they happen, until Ctrl-C (--json: one per line)')
    .addHelpText('after', examples('tend events', 'tend events --vm web --tail 20', 'tend events --json', 'tend events -f'))
    .action(async (o: { vm?: string; tail?: number; follow?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { eventsCommand, renderEvents, renderEventLine } = await import('./commands/events.js');
      const r = await eventsCommand({
        ...g,
        ...(o.vm ? { vm: o.vm } : {}),
        ...(o.tail !== undefined && Number.isFinite(o.tail) ? { tail: o.tail } : {}),
        ...(o.follow ? { follow: true, onEvent: (e: TendEvent) => out(g.json ? JSON.stringify(e) : renderEventLine(e)) } : {}),
      });
      if (o.follow) return;
      if (g.json) printJson(r);
      else out(renderEvents(r));
    });

  withStageTimeouts(program.command('exec'))
    .argument('<name>', 'VM name')
    .argument('<command...>', 'command and arguments (after --)')
    .description("run a command in the VM over SSH; its exit code becomes tend's")
    .option('-w, --wait <duration>', 'wait up to this long for the VM to be Ready (running, SSH, cloud-init) first')
    .addHelpText(
      'after',
      examples('tend exec web -- uname -a', "tend exec db -- sh -c 'df -h /'", 'tend up & tend exec -w 5m web -- cloud-init status'),
    )
    .action(async (name: string, argv: string[], o: { wait?: string }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { execCommand } = await import('./commands/exec.js');
      const r = await execCommand({
        ...g,
        name,
        argv,
        ...(typeof o.wait === 'string' ? { waitFor: o.wait } : {}),
        stdout: (b) => void process.stdout.write(b),
        stderr: (b) => void process.stderr.write(b),
      });
      rt.exitCode = r.code;
    });

  program
    .command('ssh')
    .argument('[name]', 'VM name (optional when the project has one VM)')
    .argument('[command...]', 'run this instead of a login shell (after --)')
    .description('open a terminal in the VM through the system ssh (user and key: docs/ssh.md)')
    .option('--user <user>', 'log in as this user')
    .option('--key <path>', 'also offer this private key (after the generated one)')
    .addHelpText('after', examples('tend ssh', 'tend ssh web', 'tend ssh web --user root -- journalctl -b'))
    .action(async (name: string | undefined, argv: string[], o: { user?: string; key?: string }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { sshCommand } = await import('./commands/ssh.js');
      const r = await sshCommand({
        ...g,
        ...(name ? { name } : {}),
        ...(argv.length > 0 ? { argv } : {}),
        ...(o.user ? { user: o.user } : {}),
        ...(o.key ? { key: o.key } : {}),
      });
      rt.exitCode = r.code;
    });

  program
    .command('console')
    .argument('[name]', 'VM name (optional when the project has one VM)')
    .description("attach to the VM's serial console (works during boot); Ctrl-] detaches")
    .addHelpText('after', examples('tend console web'))
    .action(async (name: string | undefined, _o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { consoleCommand } = await import('./commands/console.js');
      const r = await consoleCommand({
        ...g,
        ...(name ? { name } : {}),
        onAttached: (vm) => err(`attached to ${vm}'s serial console; Ctrl-] detaches`),
      });
      err(r.end === 'detached' ? '\ndetached' : `\n${r.vm}'s console closed (the VM stopped?)`);
    });

  program
    .command('logs')
    .argument('[name]', 'VM name (optional when the project has one VM)')
    .description("a VM's log: its events (default), its serial console, or its provisioning output")
    .option('--console', 'the serial console log (boot messages, login prompt)')
    .option('--provision', "the provisioning log (every step's output)")
    .option('-n, --lines <n>', 'only the last N lines', (v: string) => Number.parseInt(v, 10))
    .option('-f, --follow', 'keep printing what is appended, until Ctrl-C')
    .addHelpText('after', examples('tend logs web', 'tend logs web --console -f', 'tend logs web --provision -n 50'))
    .action(
      async (name: string | undefined, o: { console?: boolean; provision?: boolean; lines?: number; follow?: boolean }, cmd: Command) => {
        if (o.console && o.provision)
          throw new TendError('BadUsage', '--console and --provision show different logs: pick one', EXIT.usage);
        const g = await globals(cmd, rt);
        const { logsCommand } = await import('./commands/logs.js');
        await logsCommand({
          ...g,
          ...(name ? { name } : {}),
          source: o.console ? 'console' : o.provision ? 'provision' : 'events',
          ...(o.lines !== undefined ? { lines: o.lines } : {}),
          follow: o.follow ?? false,
          write: (line) => void process.stdout.write(line + '\n'),
        });
      },
    );

  withStageTimeouts(program.command('provision'))
    .description('run every provision step again on the running VMs (ignores the step cache)')
    .option('--name <vm>', 'only this VM (repeatable)', collect)
    .addHelpText('after', examples('tend provision', 'tend provision --name web'))
    .action(async (o: { name?: string[] }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { provisionCommand } = await import('./commands/provision.js');
      const { renderConverge } = await import('./commands/converge.js');
      const r = await provisionCommand({ ...g, ...(o.name ? { names: o.name } : {}), onEvent: logEvent(g) });
      if (g.json) printJson(r);
      else out(renderConverge(r));
      if (!r.ok) rt.exitCode = EXIT.failure;
    });

  registerExtra(program, rt);
  return program;
}

/** Commands whose modules come from other parts of tend (doctor, image); see commands/extra.ts. */
function registerExtra(program: Command, rt: Runtime): void {
  program
    .command('doctor')
    .description('check the host: QEMU, qemu-img, which accelerator really works, state dir')
    .addHelpText('after', examples('tend doctor', 'tend doctor --json'))
    .action(async (_o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { doctorCommand, renderDoctor } = await import('./commands/doctor.js');
      const r = await doctorCommand(g);
      if (g.json) printJson(r);
      else out(renderDoctor(r));
      if (!r.ok) rt.exitCode = EXIT.failure;
    });

  const image = program.command('image').description('manage base images (pull, list, inspect, verify, rm, build)');
  image.addHelpText('after', examples('tend image pull debian:12', 'tend image list', 'tend image rm debian:12'));
  const imageAction =
    (verb: string) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const g = await globals(cmd, rt);
      const { imageCommand, renderImage } = await import('./commands/image.js');
      const ref = typeof args[0] === 'string' ? args[0] : undefined;
      const opts = cmd.opts<{ force?: boolean }>();
      const r = await imageCommand({
        ...g,
        verb,
        ...(ref ? { ref } : {}),
        force: opts.force ?? false,
        onProgress: (m: string) => err(m),
        onDownload: progressBar(),
      });
      if (g.json) printJson(r);
      else out(renderImage(r));
      if (r.verb === 'verify' && !r.ok) rt.exitCode = EXIT.failure;
    };
  image
    .command('pull')
    .argument('<ref>', 'catalog name (debian:12), URL or path')
    .description('download and verify an image')
    .addHelpText('after', examples('tend image pull debian:12'))
    .action(imageAction('pull'));
  image
    .command('list')
    .alias('ls')
    .description('list stored images')
    .addHelpText('after', examples('tend image list'))
    .action(imageAction('list'));
  image
    .command('inspect')
    .argument('<ref>', 'image')
    .description('show an image: path, format, size, checksum')
    .addHelpText('after', examples('tend image inspect debian:12'))
    .action(imageAction('inspect'));
  image
    .command('verify')
    .argument('<ref>', 'image')
    .description('re-hash a stored image against its checksum')
    .addHelpText('after', examples('tend image verify debian:12'))
    .action(imageAction('verify'));
  image
    .command('rm')
    .argument('<ref>', 'image')
    .option('--force', 'delete even while VM disks use it (they break)')
    .description('delete a stored image (refused while a VM disk uses it)')
    .addHelpText('after', examples('tend image rm debian:12'))
    .action(imageAction('rm'));
  image
    .command('build')
    .argument('<name>', 'buildable catalog name')
    .description('build a catalog image locally (no network)')
    .addHelpText('after', examples('tend image build debian:12'))
    .action(imageAction('build'));

  const volume = program.command('volume').description('named volumes of the project: ls, inspect, rm (they outlive VMs)');
  volume.addHelpText('after', examples('tend volume ls', 'tend volume inspect data', 'tend volume rm data'));
  const volumeAction =
    (verb: 'ls' | 'inspect' | 'rm') =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const g = await globals(cmd, rt);
      const { volumeCommand, renderVolume } = await import('./commands/volume.js');
      const names = args
        .slice(0, -2)
        .flat()
        .filter((a): a is string => typeof a === 'string');
      const r = await volumeCommand({ ...g, verb, names });
      if (g.json) printJson(r);
      else out(renderVolume(r));
    };
  volume.command('ls').alias('list').description('list the named volumes: size, use, who mounts them').action(volumeAction('ls'));
  volume.command('inspect').argument('<name>', 'volume').description('show one volume').action(volumeAction('inspect'));
  volume
    .command('rm')
    .argument('<names...>', 'volumes')
    .description('delete volumes (refused while a VM that mounts one exists)')
    .action(volumeAction('rm'));

  program
    .command('run')
    .description(
      'start an ad-hoc VM without a project file: tend run IMAGE [--cpus N] [--memory M] [-p PORT] [-v VOL] [--pkg P] [--runcmd C] [--name N] [--rm] [-- CMD]',
    )
    .argument('[args...]', 'image, options, then -- and a command to run over SSH once Ready')
    .allowUnknownOption()
    .helpOption(false)
    .addHelpText(
      'after',
      examples('tend run debian:12', 'tend run debian:12 --memory 2G -p 8080:80 -v ./site:/srv:ro', 'tend run debian:12 --rm -- uname -a'),
    )
    .action(async (_args: string[], _o: unknown, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      // commander keeps the argv it parsed in rawArgs (untyped): run parses its own words (-v is --volume here)
      const raw = (program as unknown as { rawArgs: string[] }).rawArgs.slice(2);
      let at = raw.indexOf('run');
      while (at > 0 && ['-f', '--file', '--state-dir', '--lock-timeout'].includes(raw[at - 1])) at = raw.indexOf('run', at + 1);
      const before = raw.slice(0, Math.max(0, at));
      g.verbose = before.includes('-v') || before.includes('--verbose');
      const words = raw.slice(at + 1);
      const dash = words.indexOf('--');
      if ((dash < 0 ? words : words.slice(0, dash)).some((w) => w === '--help' || w === '-h')) {
        out(cmd.helpInformation());
        return;
      }
      const { parseRunArgs, runCommand, renderRun } = await import('./commands/run.js');
      const r = await runCommand({
        ...g,
        ...parseRunArgs(words),
        onEvent: logEvent(g),
        stdout: (b) => void process.stdout.write(b),
        stderr: (b) => void process.stderr.write(b),
      });
      if (g.json) printJson(r);
      else if (r.exec) err(renderRun(r));
      else out(renderRun(r));
      rt.exitCode = r.exec ? r.exec.code : r.ok ? EXIT.ok : EXIT.failure;
    });

  program
    .command('import')
    .argument('[domain]', 'libvirt domain name (read with virsh dumpxml)')
    .description('write a tend.yaml from a libvirt domain (--xml FILE or a domain name), warning about every part it cannot map')
    .option('--xml <file>', 'libvirt domain XML file')
    .option('-o, --output <file>', 'file to write (default tend.yaml; - prints it)')
    .option('--force', 'overwrite the output file')
    .option('-c, --connect <uri>', 'libvirt URI for virsh')
    .addHelpText('after', examples('tend import --xml vm.xml', 'tend import web01 -o - ', 'tend import -c qemu:///system web01'))
    .action(async (domain: string | undefined, o: { xml?: string; output?: string; force?: boolean; connect?: string }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { importCommand, renderImport } = await import('./commands/import.js');
      const r = await importCommand({ ...g, ...(domain ? { domain } : {}), ...o });
      if (g.json) printJson(r);
      else if (r.file) {
        for (const w of r.warnings) err(`warning: ${w.part}: ${w.message}`);
        out(`wrote ${r.file} (service ${r.name}); check it with: tend validate -f ${r.file}`);
      } else out(renderImport(r));
    });
}

/** A one-line download progress bar on a TTY; nothing otherwise (progress lines still print). */
function progressBar(): ((p: { received: number; total: number | null }) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (p) => {
    const now = Date.now();
    const done = p.total !== null && p.received >= p.total;
    if (now - last < 100 && !done) return;
    last = now;
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    if (p.total) {
      const frac = Math.min(1, p.received / p.total);
      const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
      process.stderr.write(`\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mib(p.received)}/${mib(p.total)} MiB`);
    } else {
      process.stderr.write(`\r${mib(p.received)} MiB`);
    }
    if (done) process.stderr.write('\n');
  };
}

function printError(e: unknown, verbose: boolean, json: boolean): number {
  if (json && e instanceof TendError) {
    // machine-readable: one JSON object on stderr (stdout stays for results)
    const diagnostics = e instanceof ValidationError ? { diagnostics: e.diagnostics } : {};
    err(JSON.stringify({ error: { reason: e.reason, message: e.message, exitCode: e.exitCode, ...diagnostics } }));
    return e.reason === 'Aborted' ? 130 : e.exitCode;
  }
  if (e instanceof CommanderError) {
    // commander printed its own message already
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (e instanceof ValidationError) {
    const ds: Diagnostic[] = e.diagnostics;
    for (const d of ds) err(formatDiagnostic(d));
    err(`tend: ${e.message}; nothing was changed`);
    return e.exitCode;
  }
  if (e instanceof TendError && e.reason === 'Aborted') {
    err(`tend: ${e.message}`);
    return 130;
  }
  if (e instanceof TendError) {
    err(`tend: ${e.message}`);
    if (verbose && e.cause) err(`  cause: ${e.cause instanceof Error ? (e.cause.stack ?? e.cause.message) : String(e.cause)}`);
    return e.exitCode;
  }
  if (e instanceof Error && e.name === 'AbortError') {
    err('tend: interrupted');
    return 130;
  }
  const msg = e instanceof Error ? e.message : String(e);
  err(`tend: unexpected error: ${msg}${verbose ? '' : ' (run with -v for details)'}`);
  if (verbose && e instanceof Error && e.stack) err(e.stack);
  return EXIT.failure;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const ac = new AbortController();
  const rt: Runtime = { signal: ac.signal, exitCode: EXIT.ok };
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    err(`tend: ${sig}: stopping (again to force)`);
    ac.abort(Object.assign(new Error(`interrupted by ${sig}`), { name: 'AbortError' }));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const verbose = argv.includes('-v') || argv.includes('--verbose');
  try {
    // `-f` after logs/events means --follow, not the global --file
    const { rewriteFollowFlag } = await import('./commands/logs.js');
    await buildProgram(rt).parseAsync(rewriteFollowFlag(argv));
    return rt.exitCode;
  } catch (e) {
    return printError(e, verbose, argv.includes('--json'));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
if (invokedDirectly()) {
  const code = await main();
  process.exit(code);
}
