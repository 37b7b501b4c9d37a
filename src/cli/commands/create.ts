/**
 * `tend create --name NAME (--image PATH | --image-url URL) [--vcpus N] [--memory MB] [--disk GB]
 * [--bridge BR] [--cloud-init FILE] [--ssh-key FILE]... [--start]`: vmctl's create. Like vmctl it
 * only prepares the VM: it writes the run project `tend run` writes (`<state>/run/NAME/tend.yaml`,
 * through the same builder) and checks it with the loader, and does not start it; `tend start NAME`
 * does, as `--start` does here. As in vmctl, --ssh-key makes the login user "vm".
 */
import { rm } from 'node:fs/promises';
import { EXIT, UsageError, ValidationError } from '../../../schemas/errors.js';
import type { Diagnostic } from '../../../schemas/diagnostic.js';
import { logEvent, type CliCommand } from '../command.js';
import type { GlobalOptions } from '../context.js';
import type { ConvergeCommandResult } from '../session.js';
import type { TendEvent } from '../../../schemas/ports.js';
import { renderRun } from './run.js';
import { writeRunFolder } from '../run-folder.js';

export interface CreateCommandOptions extends GlobalOptions {
  name: string;
  image?: string;
  imageUrl?: string;
  vcpus?: number;
  /** MB, as vmctl (or with a unit, as tend run) */
  memory?: string;
  diskGb?: number;
  bridge?: string;
  cloudInit?: string;
  sshKeys?: string[];
  start?: boolean;
  onEvent?: (e: TendEvent) => void;
}

export interface CreateCommandResult {
  name: string;
  file: string;
  /** Prepared (not started), or the state `--start` reached */
  state: string;
  ok: boolean;
  error?: string;
  byName: boolean;
  warnings: Diagnostic[];
}

function wholeNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} wants a whole number >= 1, got "${v}"`, 'BadNumber');
  return n;
}

export async function createCommand(o: CreateCommandOptions): Promise<CreateCommandResult> {
  if (!o.name) throw new UsageError('tend create needs --name NAME (as vmctl create)', 'MissingArgument');
  if (!o.image === !o.imageUrl)
    throw new UsageError('tend create needs one of --image PATH or --image-url URL', o.image ? 'ConflictingOptions' : 'MissingArgument');
  const run = await writeRunFolder(
    {
      ...o,
      image: (o.image ?? o.imageUrl) as string,
      ...(o.vcpus !== undefined ? { cpus: o.vcpus } : {}),
      ...(o.sshKeys?.length ? { sshKeys: o.sshKeys, user: 'vm' } : {}),
      ...(o.cloudInit ? { userData: o.cloudInit } : {}),
    },
    'create',
  );
  const { loadProject } = await import('../../load/project.js');
  const loaded = await loadProject([run.file], { cwd: run.dir, env: o.env ?? process.env });
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !loaded.project) {
    await rm(run.dir, { recursive: true, force: true });
    throw new ValidationError(errors);
  }
  const warnings = loaded.diagnostics.filter((d) => d.severity !== 'error');
  const base = { name: run.name, file: run.file, byName: run.byName, warnings };
  if (!o.start) return { ...base, state: 'Prepared', ok: true };
  const { startCommand } = await import('./start.js');
  const r: ConvergeCommandResult = await startCommand({
    ...o,
    file: [run.file],
    cwd: run.dir,
    stateDir: run.root,
    name: run.name,
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
  });
  const st = r.vms[run.name] ?? { state: 'Unknown', conditions: [] };
  return { ...base, state: st.state, ok: r.ok, ...(st.error ? { error: st.error } : {}) };
}

export function renderCreate(r: CreateCommandResult): string {
  if (r.state !== 'Prepared') return renderRun({ ...r, removed: false });
  const tend = r.byName ? 'tend' : `tend -f ${r.file}`;
  return [`${r.name}: Prepared (${r.file})`, `  start it: ${tend} start ${r.name}`, `  remove it: ${tend} down ${r.name} --destroy`].join(
    '\n',
  );
}

export const command: CliCommand = {
  name: 'create',
  description: "vmctl's create: prepare an ad-hoc VM (a run project) without starting it; tend start NAME starts it",
  examples: [
    'tend create --name myvm --image ./ubuntu.qcow2 --bridge br0',
    'tend create --name myvm --image-url https://example.com/image.img --vcpus 4 --memory 4096 --disk 40 --ssh-key ~/.ssh/id_ed25519.pub --start',
  ],
  log: true,
  live: true,
  configure: (c) =>
    c
      .option('--name <name>', 'VM name (required)')
      .option('--image <path>', 'a local disk image')
      .option('--image-url <url>', 'an image to download (cached)')
      .option('--vcpus <n>', 'virtual CPUs (default 1)')
      .option('--memory <mb>', 'memory in MB (default 1024)')
      .option('--disk <gb>', 'disk size in GB (the overlay is grown)')
      .option('--bridge <bridge>', 'TAP networking on this host bridge (default: user-mode networking)')
      .option('--cloud-init <file>', 'a cloud-init user-data file, used as is')
      .option('--ssh-key <file>', 'a public key file for the login user "vm" (repeatable)', (v: string, prev: string[] = []) => [
        ...prev,
        v,
      ])
      .option('--start', 'start the VM now (as tend start NAME)'),
  async run({ g, opts, io }) {
    const o = opts as {
      name?: string;
      image?: string;
      imageUrl?: string;
      vcpus?: string;
      memory?: string;
      disk?: string;
      bridge?: string;
      cloudInit?: string;
      sshKey?: string[];
      start?: boolean;
    };
    const vcpus = wholeNumber('--vcpus', o.vcpus);
    const diskGb = wholeNumber('--disk', o.disk);
    const r = await createCommand({
      ...g,
      name: o.name ?? '',
      ...(o.image ? { image: o.image } : {}),
      ...(o.imageUrl ? { imageUrl: o.imageUrl } : {}),
      ...(vcpus !== undefined ? { vcpus } : {}),
      ...(o.memory ? { memory: o.memory } : {}),
      ...(diskGb !== undefined ? { diskGb } : {}),
      ...(o.bridge ? { bridge: o.bridge } : {}),
      ...(o.cloudInit ? { cloudInit: o.cloudInit } : {}),
      ...(o.sshKey?.length ? { sshKeys: o.sshKey } : {}),
      ...(o.start ? { start: true } : {}),
      onEvent: logEvent(g),
    });
    if (g.json) io.json(r);
    else io.out(renderCreate(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
