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
import { EXIT, TendError, ValidationError } from '../errors.js';
import { formatDiagnostic, type Diagnostic } from '../load/diagnostic.js';
import type { GlobalOptions } from './context.js';
import type { TendEvent } from '../../controllers/types.js';

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

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

interface Runtime {
  signal: AbortSignal;
  /** exit code decided by a command's result (e.g. converge not ok) */
  exitCode: number;
}

async function globals(cmd: Command, rt: Runtime, withLog = false): Promise<GlobalOptions> {
  const o = cmd.optsWithGlobals<{ file?: string[]; json?: boolean; stateDir?: string; lockTimeout?: string; wait?: boolean; verbose?: boolean }>();
  const g: GlobalOptions = {
    json: o.json ?? false,
    lockTimeout: o.lockTimeout ?? '5m',
    wait: o.wait !== false,
    verbose: o.verbose ?? false,
    signal: rt.signal,
    ...(o.file ? { file: o.file } : {}),
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
  };
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

  program
    .command('converge')
    .alias('up')
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

  program
    .command('down')
    .description('stop every VM of the project, dependents first (`tend up` starts them again)')
    .option('--destroy', 'also delete the VMs (disks, seeds, keys)')
    .option('--volumes', 'also delete named volumes (implies --destroy)')
    .addHelpText('after', examples('tend down', 'tend down --destroy --volumes'))
    .action(async (o: { destroy?: boolean; volumes?: boolean }, cmd: Command) => {
      const g = await globals(cmd, rt, true);
      const { downCommand } = await import('./commands/down.js');
      const { renderConverge } = await import('./commands/converge.js');
      const r = await downCommand({ ...g, destroy: o.destroy ?? false, volumes: o.volumes ?? false, onEvent: logEvent(g) });
      if (g.json) printJson(r);
      else out(renderConverge(r));
      if (!r.ok) rt.exitCode = EXIT.failure;
    });

  program
    .command('start')
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

  program
    .command('restart')
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
    destroy: ['stop the VM and delete its disk, seed and keys (named volumes are kept)', async () => (await import('./commands/destroy.js')).destroyCommand],
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
    .description('list the VMs: state, readiness, accelerator, ports, SSH, age, conditions')
    .addHelpText('after', examples('tend ps', 'tend ps --json'))
    .action(async (_o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { psCommand, renderPs } = await import('./commands/ps.js');
      const r = await psCommand(g);
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
    .addHelpText('after', examples('tend events', 'tend events --vm web --tail 20', 'tend events --json'))
    .action(async (o: { vm?: string; tail?: number }, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { eventsCommand, renderEvents } = await import('./commands/events.js');
      const r = await eventsCommand({ ...g, ...(o.vm ? { vm: o.vm } : {}), ...(o.tail !== undefined && Number.isFinite(o.tail) ? { tail: o.tail } : {}) });
      if (g.json) printJson(r);
      else out(renderEvents(r));
    });

  program
    .command('exec')
    .argument('<name>', 'VM name')
    .argument('<command...>', 'command and arguments (after --)')
    .description('run a command in the VM over SSH; its exit code becomes tend\'s')
    .addHelpText('after', examples('tend exec web -- uname -a', "tend exec db -- sh -c 'df -h /'"))
    .action(async (name: string, argv: string[], _o, cmd: Command) => {
      const g = await globals(cmd, rt);
      const { execCommand } = await import('./commands/exec.js');
      const r = await execCommand({
        ...g,
        name,
        argv,
        stdout: (b) => void process.stdout.write(b),
        stderr: (b) => void process.stderr.write(b),
      });
      rt.exitCode = r.code;
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
  const imageAction = (verb: string) => async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = await globals(cmd, rt);
    const { imageCommand, renderImage } = await import('./commands/image.js');
    const ref = typeof args[0] === 'string' ? args[0] : undefined;
    const opts = cmd.opts<{ force?: boolean }>();
    const r = await imageCommand({ ...g, verb, ...(ref ? { ref } : {}), force: opts.force ?? false, onProgress: (m: string) => err(m), onDownload: progressBar() });
    if (g.json) printJson(r);
    else out(renderImage(r));
    if (r.verb === 'verify' && !r.ok) rt.exitCode = EXIT.failure;
  };
  image.command('pull').argument('<ref>', 'catalog name (debian:12), URL or path').description('download and verify an image').addHelpText('after', examples('tend image pull debian:12')).action(imageAction('pull'));
  image.command('list').alias('ls').description('list stored images').addHelpText('after', examples('tend image list')).action(imageAction('list'));
  image.command('inspect').argument('<ref>', 'image').description('show an image: path, format, size, checksum').addHelpText('after', examples('tend image inspect debian:12')).action(imageAction('inspect'));
  image.command('verify').argument('<ref>', 'image').description('re-hash a stored image against its checksum').addHelpText('after', examples('tend image verify debian:12')).action(imageAction('verify'));
  image.command('rm').argument('<ref>', 'image').option('--force', 'delete even while VM disks use it (they break)').description('delete a stored image (refused while a VM disk uses it)').addHelpText('after', examples('tend image rm debian:12')).action(imageAction('rm'));
  image.command('build').argument('<name>', 'buildable catalog name').description('build a catalog image locally (no network)').addHelpText('after', examples('tend image build debian:12')).action(imageAction('build'));

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
    await buildProgram(rt).parseAsync(argv);
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
