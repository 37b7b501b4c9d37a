/**
 * `tend import --xml FILE | DOMAIN [-o FILE] [--force]`: a libvirt domain as a tend.yaml. With a
 * domain name instead of --xml, the XML comes from `virsh dumpxml DOMAIN` (virsh must be on
 * PATH). Every part that cannot be mapped is returned as a warning (and written as a comment at
 * the top of the file). `-o -` prints the YAML instead of writing it.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BackendError, NotFoundError, TendError, EXIT, UsageError } from '../../../schemas/errors.js';
import { importDomainXml, type ImportWarning } from '../../import/libvirt.js';
import type { GlobalOptions } from '../context.js';
import type { CliCommand } from '../command.js';

export interface ImportCommandOptions extends GlobalOptions {
  xml?: string;
  domain?: string;
  /** output file (default tend.yaml in cwd); "-" = do not write, return the text */
  output?: string;
  force?: boolean;
  /** libvirt URI for virsh (-c) */
  connect?: string;
}

export interface ImportCommandResult {
  name: string;
  /** the file written, or null with -o - */
  file: string | null;
  yaml: string;
  warnings: ImportWarning[];
}

async function virshDumpxml(domain: string, o: ImportCommandOptions): Promise<string> {
  const { execa } = await import('execa');
  try {
    const r = await execa('virsh', [...(o.connect ? ['-c', o.connect] : []), 'dumpxml', domain], {
      env: o.env ?? process.env,
      stdin: 'ignore',
    });
    return r.stdout;
  } catch (err) {
    const e = err as { code?: string; stderr?: string; shortMessage?: string };
    if (e.code === 'ENOENT')
      throw new NotFoundError(
        'VirshMissing',
        'virsh is not installed: export the domain with `virsh dumpxml NAME > vm.xml` elsewhere and use --xml vm.xml',
      );
    throw new BackendError('VirshFailed', `virsh dumpxml ${domain}: ${(e.stderr || e.shortMessage || String(err)).trim()}`, { cause: err });
  }
}

export async function importCommand(o: ImportCommandOptions): Promise<ImportCommandResult> {
  const cwd = o.cwd ?? process.cwd();
  if (!o.xml && !o.domain) throw new UsageError('tend import needs --xml FILE or a libvirt domain name', 'MissingArgument');
  if (o.xml && o.domain) throw new UsageError('give either --xml FILE or a domain name, not both', 'ConflictingOptions');
  let xml: string;
  if (o.xml) {
    const path = resolve(cwd, o.xml);
    try {
      xml = await readFile(path, 'utf8');
    } catch (err) {
      throw new NotFoundError('XmlNotFound', `cannot read ${path}: ${(err as Error).message}`);
    }
  } else {
    xml = await virshDumpxml(o.domain as string, o);
  }
  let r: ReturnType<typeof importDomainXml>;
  try {
    r = importDomainXml(xml);
  } catch (err) {
    throw new TendError('InvalidDomainXml', `${o.xml ?? `virsh dumpxml ${o.domain}`}: ${(err as Error).message}`, EXIT.invalidInput, {
      cause: err,
    });
  }
  if (o.output === '-') return { name: r.name, file: null, yaml: r.yaml, warnings: r.warnings };
  const file = resolve(cwd, o.output ?? 'tend.yaml');
  if (existsSync(file) && !o.force) throw new UsageError(`${file} exists: pass --force to overwrite it, or -o OTHER.yaml`, 'FileExists');
  await writeFile(file, r.yaml);
  return { name: r.name, file, yaml: r.yaml, warnings: r.warnings };
}

export function renderImport(r: ImportCommandResult): string {
  const lines = r.warnings.map((w) => `warning: ${w.part}: ${w.message}`);
  if (r.file) lines.push(`wrote ${r.file} (service ${r.name}); check it with: tend validate -f ${r.file}`);
  else lines.unshift(r.yaml.trimEnd());
  return lines.join('\n');
}

export const command: CliCommand = {
  name: 'import',
  description: 'write a tend.yaml from a libvirt domain (--xml FILE or a domain name), warning about every part it cannot map',
  examples: ['tend import --xml vm.xml', 'tend import web01 -o - ', 'tend import -c qemu:///system web01'],
  configure: (c) =>
    c
      .argument('[domain]', 'libvirt domain name (read with virsh dumpxml)')
      .option('--xml <file>', 'libvirt domain XML file')
      .option('-o, --output <file>', 'file to write (default tend.yaml; - prints it)')
      .option('--force', 'overwrite the output file')
      .option('-c, --connect <uri>', 'libvirt URI for virsh'),
  async run({ g, args, opts, io }) {
    const domain = args[0] as string | undefined;
    const o = opts as { xml?: string; output?: string; force?: boolean; connect?: string };
    const r = await importCommand({ ...g, ...(domain ? { domain } : {}), ...o });
    if (g.json) io.json(r);
    else if (r.file) {
      for (const w of r.warnings) io.err(`warning: ${w.part}: ${w.message}`);
      io.out(`wrote ${r.file} (service ${r.name}); check it with: tend validate -f ${r.file}`);
    } else io.out(renderImport(r));
    return EXIT.ok;
  },
};
