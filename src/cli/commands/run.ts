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
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { NAME_RE } from '../../../schemas/names.js';
import { EXIT, UsageError } from '../../../schemas/errors.js';
import { logEvent, type CliCommand } from '../command.js';
import { memoryWithUnitToMiB } from '../../../schemas/units.js';
import { isHostPath, parseVolumeSpec } from '../../load/volumes.js';
import { parsePortSpec } from '../../load/ports.js';
import { RUN_FILE, runDir } from '../../state/paths.js';
import { loadContext, resolveStateRoot, type GlobalOptions } from '../context.js';
import type { ConvergeCommandResult } from '../session.js';
import type { TendEvent } from '../../../schemas/ports.js';

export interface RunCommandOptions extends GlobalOptions {
  image: string;
  cpus?: number;
  /** MiB, or "2G" / "512M" */
  memory?: string | number;
  ports?: string[];
  volumes?: string[];
  packages?: string[];
  runcmd?: string[];
  /** holos: PCI devices to pass through (--device 0000:01:00.0) */
  devices?: string[];
  /** holos: OS family of a custom image (--image-os openrc) */
  imageOs?: string;
  /** holos: the user cloud-init creates (--user) */
  user?: string;
  /** holos: UEFI firmware (--uefi) */
  uefi?: boolean;
  /** holos: a Dockerfile run as provisioning (--dockerfile); its FROM is the image when none is given */
  dockerfile?: string;
  name?: string;
  /** vmctl create: disk size in GiB (--disk) */
  diskGb?: number;
  /** vmctl create: TAP networking on this host bridge (--bridge) */
  bridge?: string;
  /** vmctl create: a cloud-init user-data file used as is (--cloud-init) */
  userData?: string;
  /** vmctl create: public key files for the login user (--ssh-key) */
  sshKeys?: string[];
  /** destroy the VM (and its run folder) after CMD ran */
  rm?: boolean;
  /** run over SSH once Ready */
  command?: string[];
  onEvent?: (e: TendEvent) => void;
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

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

/** "debian:12" -> "debian-12", "./img/base.qcow2" -> "base", "https://x/y/noble.img" -> "noble". */
export function nameFromImage(image: string): string {
  const last = basename(image.split('?')[0])
    .replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|xz|zst)$/g, '')
    .replace(/\.(qcow2|img|raw)$/, '');
  const n = last
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return n || 'vm';
}

export function parseMemory(v: string | number): number {
  const mib = typeof v === 'number' || /^\d+$/.test(v.trim()) ? Number(v) : memoryWithUnitToMiB(v);
  if (mib === null || !Number.isFinite(mib))
    throw new UsageError(`--memory "${v}" is not a size: write MiB (2048) or 2G / 512M`, 'BadMemory');
  return mib;
}

/** The tend.yaml of an ad-hoc VM (host paths made absolute against `cwd`). Validates the flags. */
export function runProjectYaml(o: RunCommandOptions, name: string, cwd: string, verb = 'run'): string {
  const svc: Record<string, unknown> = {};
  if (o.image) svc.image = /^(\.|~|\/)/.test(o.image) && !o.image.startsWith('~') ? resolve(cwd, o.image) : o.image;
  if (o.dockerfile) svc.dockerfile = resolve(cwd, o.dockerfile);
  if (o.imageOs) svc.image_os = o.imageOs;
  if (o.devices?.length) svc.devices = o.devices.map((pci) => ({ pci }));
  const vm: Record<string, unknown> = {};
  if (o.uefi) vm.uefi = true;
  if (o.cpus !== undefined) {
    if (!Number.isInteger(o.cpus) || o.cpus < 1) throw new UsageError(`--cpus wants a whole number >= 1, got ${o.cpus}`, 'BadCpus');
    vm.vcpu = o.cpus;
  }
  if (o.memory !== undefined) vm.memory_mb = parseMemory(o.memory);
  if (o.diskGb !== undefined) {
    if (!Number.isInteger(o.diskGb) || o.diskGb < 1)
      throw new UsageError(`--disk wants a whole number of GB >= 1, got ${o.diskGb}`, 'BadDisk');
    vm.disk_size = o.diskGb;
  }
  if (Object.keys(vm).length) svc.vm = vm;
  if (o.bridge) svc.network = { mode: 'tap', bridge: o.bridge };
  if (o.ports?.length) {
    for (const p of o.ports) {
      const r = parsePortSpec(p);
      if (!r.ok) throw new UsageError(`-p ${p}: ${r.message}${r.hint ? ` (${r.hint})` : ''}`, 'BadPort');
    }
    svc.ports = [...o.ports];
  }
  const named: Record<string, object> = {};
  if (o.volumes?.length) {
    svc.volumes = o.volumes.map((v) => {
      const r = parseVolumeSpec(v);
      if (!r.ok) throw new UsageError(`-v ${v}: ${r.message}${r.hint ? ` (${r.hint})` : ''}`, 'BadVolume');
      if (r.value.kind === 'named') {
        named[r.value.name] = {};
        return v;
      }
      const src = r.value.source;
      const abs = isHostPath(src) && !src.startsWith('~') ? resolve(cwd, src) : src;
      return `${abs}:${r.value.target}${r.value.readOnly ? ':ro' : ''}`;
    });
  }
  const ci: Record<string, unknown> = {};
  if (o.packages?.length) ci.packages = [...o.packages];
  if (o.runcmd?.length) ci.runcmd = [...o.runcmd];
  if (o.user) ci.user = o.user;
  if (o.sshKeys?.length) ci.ssh_authorized_keys = o.sshKeys.map((k) => (k.startsWith('~') ? k : resolve(cwd, k)));
  if (o.userData) {
    if (Object.keys(ci).length) {
      throw new UsageError(
        'a --cloud-init user-data file is used as is: put packages, commands, users and keys in it rather than in other flags',
        'ConflictingOptions',
      );
    }
    ci.user_data = resolve(cwd, o.userData);
  }
  if (Object.keys(ci).length) svc.cloud_init = ci;
  svc.disposable = true;
  const doc: Record<string, unknown> = { name, services: { [name]: svc } };
  if (Object.keys(named).length) doc.volumes = named;
  return `# written by \`tend ${verb}\`; remove with: tend down ${name} --destroy (or tend -f <this file> down --destroy)\n${stringify(doc, { lineWidth: 0 })}`;
}

/** Does `tend <command> NAME`, typed in `o.cwd` without -f, reach the run VM? (Not when a project VM has its name.) */
async function reachableByName(o: RunCommandOptions, root: string, name: string): Promise<boolean> {
  const { file: _file, ...rest } = o;
  return loadContext({ ...rest, stateDir: root }, name).then(
    (ctx) => ctx.run?.name === name,
    () => false,
  );
}

export interface RunFolder {
  name: string;
  /** `<state>/run/NAME` */
  dir: string;
  /** its tend.yaml */
  file: string;
  root: string;
  byName: boolean;
}

/**
 * Writes `<state>/run/NAME/tend.yaml` for an ad-hoc VM (`tend run`, `tend create`). An existing
 * run of that name is refused unless `replace` (run --name reuses it), and always for create.
 */
export async function writeRunFolder(o: RunCommandOptions, verb: 'run' | 'create' = 'run'): Promise<RunFolder> {
  const cwd = o.cwd ?? process.cwd();
  const root = resolveStateRoot(o);
  const name = o.name ?? `${nameFromImage(o.image)}-${randomBytes(2).toString('hex')}`;
  if (!NAME_RE.test(name)) {
    throw new UsageError(`--name "${name}" is not a valid VM name: lower-case letters, digits and "-" (at most 63)`, 'BadName');
  }
  const dir = runDir(root, name);
  const file = join(dir, RUN_FILE);
  if (existsSync(file) && (!o.name || verb === 'create')) {
    throw new UsageError(
      `a run VM named ${name} exists already (${file}): pick another --name, or remove it with tend down ${name} --destroy`,
      'NameTaken',
    );
  }
  const yaml = runProjectYaml(o, name, cwd, verb);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(file, yaml, { mode: 0o600 });
  return { name, dir, file, root, byName: await reachableByName(o, root, name) };
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
    'start an ad-hoc VM without a project file: tend run IMAGE [--cpus N] [--memory M] [-p PORT] [-v VOL] [--pkg P] [--runcmd C] [--name N] [--rm] [-- CMD]',
  examples: ['tend run debian:12', 'tend run debian:12 --memory 2G -p 8080:80 -v ./site:/srv:ro', 'tend run debian:12 --rm -- uname -a'],
  log: true,
  configure: (c) =>
    c.argument('[args...]', 'image, options, then -- and a command to run over SSH once Ready').allowUnknownOption().helpOption(false),
  async run({ g, io, rawArgs, help }) {
    // run parses its own words (-v is --volume here), from the line as typed
    const raw = rawArgs;
    let at = raw.indexOf('run');
    while (at > 0 && ['-f', '--file', '--state-dir', '--lock-timeout'].includes(raw[at - 1])) at = raw.indexOf('run', at + 1);
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
