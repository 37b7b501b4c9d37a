/**
 * `tend run IMAGE [--cpus N] [--memory MiB] [-p PORT]... [-v VOL]... [--pkg P]... [--runcmd C]...
 * [--name NAME] [--rm] [-- CMD...]`: an ad-hoc VM without a project file. Like holos, it writes
 * a tend.yaml under the state folder (`<state>/run/<name>/tend.yaml`), converges it, and prints
 * the name and the commands to reach it: `tend exec NAME -- ...`, `console NAME`, `logs NAME`,
 * `down NAME --destroy` find a run VM by its name (loadContext, src/cli/context.ts). When the
 * working directory's project has a VM of that name too, the project VM wins, so the hints
 * spell `tend -f <that file>` instead.
 * With `-- CMD` it runs CMD over SSH once the VM is Ready and returns its output and exit code;
 * `--rm` destroys the VM afterwards.
 */
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { type GlobalOptions } from '../context.js';
import type { ConvergeCommandResult } from '../session.js';
import { writeRunFolder, type RunCommandOptions } from '../run-folder.js';

export interface RunCommandResult {
  name: string;
  /** the synthesized project file */
  file: string;
  ok: boolean;
  state: string;
  error?: string;
  /** set when a command was given */
  exec?: { code: number; stdout: string; stderr: string };
  removed: boolean;
  /**
   * `tend exec NAME` etc. reach this VM from the directory `tend run` ran in (false when that
   * directory's project has a VM of the same name: then only `-f file` does)
   */
  byName: boolean;
}

export type RunArgs = Pick<
  RunCommandOptions,
  | 'image'
  | 'cpus'
  | 'memory'
  | 'ports'
  | 'volumes'
  | 'packages'
  | 'runcmd'
  | 'name'
  | 'rm'
  | 'command'
  | 'devices'
  | 'imageOs'
  | 'user'
  | 'uefi'
  | 'dockerfile'
  | 'warm'
>;

/** Global options main.ts already parsed (they may appear after `run` too): skipped here. */
const GLOBAL_FLAGS = new Set(['--json', '--no-wait', '--verbose']);
const GLOBAL_WITH_VALUE = new Set(['-f', '--file', '--state-dir', '--lock-timeout']);

/**
 * The words after `tend run`, parsed here rather than by commander: `-v` means --volume for
 * run (docker's spelling) but --verbose for tend, and commander would give it to the program.
 */
export function parseRunArgs(words: readonly string[]): RunArgs {
  const out: RunArgs = { image: '' };
  const push = (k: 'ports' | 'volumes' | 'packages' | 'runcmd' | 'devices', v: string): void => void (out[k] = [...(out[k] ?? []), v]);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '--') {
      out.command = words.slice(i + 1);
      break;
    }
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const flag = eq > 0 ? w.slice(0, eq) : w;
    const value = (): string => {
      if (eq > 0) return w.slice(eq + 1);
      const v = words[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`, 'MissingValue');
      return v;
    };
    switch (flag) {
      case '--vcpu': // holos' spelling
      case '--cpus': {
        const v = value();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--cpus wants a whole number >= 1, got "${v}"`, 'BadCpus');
        out.cpus = n;
        break;
      }
      case '-m':
      case '--memory':
        out.memory = value();
        break;
      case '-p':
      case '--port': // holos' spelling
      case '--publish':
        push('ports', value());
        break;
      case '-v':
      case '--volume':
        push('volumes', value());
        break;
      case '--pkg':
        push('packages', value());
        break;
      case '--runcmd':
        push('runcmd', value());
        break;
      case '--name':
        out.name = value();
        break;
      case '--device':
        push('devices', value());
        break;
      case '--image-os':
        out.imageOs = value();
        break;
      case '--user':
        out.user = value();
        break;
      case '--uefi':
        out.uefi = true;
        break;
      case '--dockerfile':
        out.dockerfile = value();
        break;
      case '--rm':
        out.rm = true;
        break;
      case '--warm': // the default; kept for scripts written before it was
        out.warm = true;
        break;
      case '--no-warm':
        out.warm = false;
        break;
      default:
        if (GLOBAL_FLAGS.has(flag)) break;
        if (GLOBAL_WITH_VALUE.has(flag)) {
          if (eq < 0) i++;
          break;
        }
        if (w.startsWith('-') && w !== '-') throw new UsageError(`tend run: unknown option ${flag}`, 'UnknownOption');
        if (out.image)
          throw new UsageError(`tend run takes one image; put the command after --: tend run ${out.image} -- ${w}`, 'ExtraArgument');
        out.image = w;
    }
  }
  if (!out.image && !out.dockerfile) throw new UsageError('tend run needs an image: tend run debian:12 [-- COMMAND]', 'MissingArgument');
  return out;
}

export async function runCommand(o: RunCommandOptions): Promise<RunCommandResult> {
  const { name, dir, file, root, byName } = await writeRunFolder(o);

  const g: GlobalOptions = { ...o, file: [file], cwd: dir, stateDir: root };
  const { convergeCommand } = await import('./converge.js');
  const r: ConvergeCommandResult = await convergeCommand({ ...g, ...(o.onEvent ? { onEvent: o.onEvent } : {}) }, 'run');
  const st = r.vms[name] ?? { state: 'Unknown', conditions: [] };
  const result: RunCommandResult = {
    name,
    file,
    ok: r.ok,
    state: st.state,
    ...(st.error ? { error: st.error } : {}),
    removed: false,
    byName,
  };
  if (r.ok && o.command && o.command.length > 0) {
    const { execCommand } = await import('./exec.js');
    const x = await execCommand({
      ...g,
      name,
      argv: o.command,
      ...(o.stdout ? { stdout: o.stdout } : {}),
      ...(o.stderr ? { stderr: o.stderr } : {}),
    });
    result.exec = { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
  if (o.rm) {
    const { downCommand } = await import('./down.js');
    const d = await downCommand({ ...g, destroy: true, volumes: true });
    if (d.ok) {
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
      result.removed = true;
    }
  }
  return result;
}

export function renderRun(r: RunCommandResult): string {
  // the short forms find the run VM by name; `-f` when a project VM of the same name would win
  const tend = r.byName ? 'tend' : `tend -f ${r.file}`;
  const down = r.byName ? `tend down ${r.name} --destroy` : `${tend} down --destroy`;
  if (r.exec && !r.removed) return `(${r.name} keeps running: ${down})`;
  if (r.exec) return '';
  if (!r.ok) return `${r.name}: ${r.state}${r.error ? ` — ${r.error}` : ''}\n  logs: ${tend} logs ${r.name}\n  remove: ${down}`;
  if (r.removed) return `${r.name}: removed`;
  return [
    `${r.name}: ${r.state}`,
    `  ${tend} exec ${r.name} -- uname -a`,
    `  ${tend} console ${r.name}`,
    `  ${tend} logs ${r.name}`,
    `  ${down}`,
  ].join('\n');
}

export const command: CliCommand = {
  name: 'run',
  description:
    'start an ad-hoc VM without a project file: tend run IMAGE [--cpus N] [--memory M] [-p PORT] [-v VOL] [--pkg P] [--runcmd C] [--name N] [--rm] [--no-warm] [-- CMD]',
  helpAfter: `
Options (run reads its own; global options go before \`run\`):
  IMAGE                        a built-in name (\`tend images\`), a URL or a path
  --cpus N, --vcpu N           virtual CPUs (default 1)
  -m, --memory SIZE            MiB (2048) or with a unit (2G, 512M); default 1G
  -p, --publish, --port SPEC   forward a port: [host:]guest[/proto] (repeatable)
  -v, --volume SPEC            name:/target[:ro] or ./host:/target[:ro] (repeatable)
  --pkg NAME                   install a package with cloud-init (repeatable)
  --runcmd CMD                 run a command at first boot (repeatable)
  --name NAME                  the VM's name (default: from the image, plus 4 hex digits);
                               an existing run VM of that name is reused
  --user NAME                  the login user cloud-init creates
  --image-os FAMILY            OS family of a custom image (debian, ubuntu, alpine, ...)
  --uefi                       boot with UEFI firmware
  --device PCI                 pass a host PCI device through (repeatable)
  --dockerfile FILE            provision with a Dockerfile (its FROM is the image if none given)
  --rm                         destroy the VM and its run folder after -- CMD ran
  --no-warm                    boot cold and keep no template. By default run starts from a
                               warm template of the same image and settings (seconds, not a
                               boot) and, without one, keeps one once Ready (docs/warm.md)
  -- CMD [ARGS...]             run CMD over SSH once the VM is Ready; tend exits with its code
`,
  examples: ['tend run debian:12', 'tend run debian:12 --memory 2G -p 8080:80 -v ./site:/srv:ro', 'tend run debian:12 --rm -- uname -a'],
  log: true,
  live: true,
  configure: (c) =>
    c.argument('[args...]', 'image, options, then -- and a command to run over SSH once Ready').allowUnknownOption().helpOption(false),
  async run({ g, io, rawArgs, help }) {
    // run parses its own words (-v is --volume here), from the line as typed
    const raw = rawArgs;
    // commander reads run's `-p PORT` as the global -p PROJECT too: a run VM is a project of its own
    delete g.project;
    let at = raw.indexOf('run');
    while (at > 0 && ['-f', '--file', '-p', '--project', '--state-dir', '--lock-timeout'].includes(raw[at - 1]))
      at = raw.indexOf('run', at + 1);
    const before = raw.slice(0, Math.max(0, at));
    g.verbose = before.includes('-v') || before.includes('--verbose');
    const words = raw.slice(at + 1);
    const dash = words.indexOf('--');
    if ((dash < 0 ? words : words.slice(0, dash)).some((w) => w === '--help' || w === '-h')) {
      io.out(help());
      return EXIT.ok;
    }
    const r = await runCommand({
      ...g,
      ...parseRunArgs(words),
      onEvent: logEvent(g),
      stdout: (b) => io.stdout(b),
      stderr: (b) => io.stderr(b),
    });
    if (g.json) io.json(r);
    else if (r.exec) io.err(renderRun(r));
    else io.out(renderRun(r));
    return r.exec ? r.exec.code : r.ok ? EXIT.ok : EXIT.failure;
  },
};
