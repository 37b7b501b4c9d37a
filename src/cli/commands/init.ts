/**
 * `tend init`: a starter project file in the working directory for a chosen image: tend.yaml
 * (with the yaml-language-server modeline pointing at this tend's schema), or VMFile.kdl / vms.yml
 * with --format. Refuses to overwrite, and refuses to add a second project file next to an
 * existing one (both would be loaded as one project). The file is validated before it is kept.
 */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, UsageError, ValidationError } from '../../../schemas/errors.js';
import { NAME_RE } from '../../../schemas/names.js';
import { catalogEntry } from '../../images/catalog.js';
import { loadProject, projectFilesIn } from '../../load/project.js';
import type { CliCommand } from '../command.js';
import type { GlobalOptions } from '../context.js';
import { nameFromImage } from '../run-folder.js';

export type InitFormat = 'yaml' | 'kdl' | 'vms';
const FILE_OF: Record<InitFormat, string> = { yaml: 'tend.yaml', kdl: 'VMFile.kdl', vms: 'vms.yml' };

export interface InitCommandOptions extends GlobalOptions {
  image?: string;
  format?: string;
  /** the VM's name (default: from the image, e.g. debian-12) */
  name?: string;
}

export interface InitResult {
  file: string;
  vm: string;
  image: string;
}

/** tend's own schemas/tend.schema.json (next to the sources or the installed package), else its $id URL. */
export function schemaLocation(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'schemas', 'tend.schema.json');
    if (existsSync(p) && existsSync(join(dir, 'package.json'))) return p;
    dir = dirname(dir);
  }
  return 'https://tend.dev/schemas/tend.schema.json';
}

const projectName = (dir: string): string | null => {
  const n = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return NAME_RE.test(n) ? n : null;
};

export function starterText(format: InitFormat, o: { image: string; vm: string; project: string | null }): string {
  const q = JSON.stringify;
  switch (format) {
    case 'yaml':
      return [
        `# yaml-language-server: $schema=${schemaLocation()}`,
        '# Written by `tend init`. `tend up` starts the VM, `tend ssh` logs in, `tend ps` shows it.',
        '# Every key: docs/compose.md. Edit and run `tend up` again: tend applies the difference.',
        ...(o.project ? [`name: ${o.project}`] : []),
        'services:',
        `  ${o.vm}:`,
        `    image: ${q(o.image)}`,
        '    vm:',
        '      vcpu: 1',
        '      memory_mb: 1024',
        '      disk_size: 10',
        '    # ports: ["8080:80"]          # host 127.0.0.1:8080 -> guest port 80',
        '    # cloud_init:',
        '    #   packages: [curl]',
        '',
      ].join('\n');
    case 'kdl':
      return [
        '// Written by `tend init`. `tend up` starts the VM, `tend ssh` logs in, `tend ps` shows it.',
        "// Every node: docs/kdl.md (vmctl's VMFile).",
        `vm ${q(o.vm)} {`,
        `    image ${q(o.image)}`,
        '    vcpus 1',
        '    memory 1024',
        '    disk 10',
        '    network "user"',
        '}',
        '',
      ].join('\n');
    case 'vms': {
      const e = catalogEntry(o.image);
      const url = e ? e.url : o.image;
      const checksum = e?.checksum
        ? `{type: ${e.checksum.split(':')[0]}, value: ${e.checksum.split(':')[1]}}`
        : `{type: ${/512/.test(e?.checksumUrl ?? '') ? 'sha512' : 'sha256'}}`;
      return [
        "# Written by `tend init` (ov's vms.yml). `tend up` starts the VM, `tend ssh` logs in, `tend ps` shows it.",
        '# Every key: docs/vms-yml.md.',
        'vms:',
        `  ${o.vm}:`,
        '    source:',
        '      kind: cloud_image',
        `      url: ${url}`,
        `      checksum: ${checksum}${e?.checksum ? '' : "          # digest read from the publisher's checksum file"}`,
        '    ram: 1G',
        '    cpus: 1',
        '    disk_size: 10G',
        '',
      ].join('\n');
    }
  }
}

export async function initCommand(o: InitCommandOptions): Promise<InitResult> {
  const cwd = o.cwd ?? process.cwd();
  const format = (o.format ?? 'yaml') as InitFormat;
  if (!(format in FILE_OF))
    throw new UsageError(`--format ${o.format}: use yaml (tend.yaml), kdl (VMFile.kdl) or vms (vms.yml)`, 'BadFormat');
  const image = o.image ?? 'debian:12';
  const vm = o.name ?? nameFromImage(image);
  if (!NAME_RE.test(vm))
    throw new UsageError(`--name "${vm}" is not a valid VM name: lower-case letters, digits and "-" (at most 63)`, 'BadName');
  const file = resolve(cwd, FILE_OF[format]);
  if (existsSync(file))
    throw new UsageError(`${file} exists already: tend init never overwrites a file (edit it, or remove it first)`, 'FileExists');
  const others = projectFilesIn(cwd);
  if (others.length > 0) {
    throw new UsageError(
      `this folder has a project file already (${others.map((f) => basename(f)).join(', ')}): a second one would be loaded with it as one project`,
      'FileExists',
    );
  }
  await writeFile(file, starterText(format, { image, vm, project: projectName(cwd) }), { flag: 'wx', mode: 0o644 });
  // what init writes must load: a bad --image (or a tend bug) is reported and leaves nothing behind
  const r = await loadProject([file], { env: o.env ?? process.env, cwd });
  if (!r.project) {
    await rm(file, { force: true });
    throw new ValidationError(r.diagnostics.filter((d) => d.severity === 'error'));
  }
  return { file, vm, image };
}

export const command: CliCommand = {
  name: 'init',
  description: 'write a starter project file here (tend.yaml, or --format kdl|vms) for an image; never overwrites',
  examples: [
    'tend init',
    'tend init --image ubuntu:noble --name dev',
    'tend init --format kdl',
    'tend init --format vms --image debian:12',
  ],
  configure: (c) =>
    c
      .option('--image <image>', "the VM's image: a built-in name (`tend images`), a URL or a path", 'debian:12')
      .option('--format <format>', 'yaml (tend.yaml), kdl (VMFile.kdl) or vms (vms.yml)', 'yaml')
      .option('--name <name>', "the VM's name (default: from the image, e.g. debian-12)"),
  async run({ g, opts, io }) {
    const r = await initCommand({
      ...g,
      image: opts.image as string,
      format: opts.format as string,
      ...(typeof opts.name === 'string' ? { name: opts.name } : {}),
    });
    if (g.json) io.json(r);
    else io.out(`wrote ${r.file} (VM ${r.vm}, image ${r.image}): \`tend up\` starts it`);
    return EXIT.ok;
  },
};
