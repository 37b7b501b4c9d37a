/**
 * `tend import --xml FILE | DOMAIN... | --all [-o FILE] [--force]`: libvirt domains as one
 * tend.yaml, a service each. With domain names instead of --xml, the XML comes from
 * `virsh dumpxml DOMAIN` (virsh must be on PATH); --all imports every domain
 * `virsh list --all --name` lists. Every part that cannot be mapped, or was mapped to something
 * different, is returned as a warning (and written as a comment at the top of the file).
 * `-o -` prints the YAML instead of writing it.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { BackendError, NotFoundError, TendError, EXIT, UsageError } from '../../../schemas/errors.js';
import { importDomainXml, normaliseName, projectYaml, type ImportResult, type ImportWarning } from '../../import/libvirt.js';
import type { GlobalOptions } from '../context.js';
import type { CliCommand } from '../command.js';

export interface ImportCommandOptions extends GlobalOptions {
  xml?: string;
  /** one libvirt domain (kept for callers of the single form) */
  domain?: string;
  /** several libvirt domains */
  domains?: string[];
  /** every domain `virsh list --all --name` lists */
  all?: boolean;
  /** output file (default tend.yaml in cwd); "-" = do not write, return the text */
  output?: string;
  force?: boolean;
  /** libvirt URI for virsh (-c) */
  connect?: string;
}

export interface ImportCommandResult {
  /** the project name (the domain's name when one domain is imported) */
  name: string;
  /** the services written, one per domain */
  services: { name: string; domain: string }[];
  /** the file written, or null with -o - */
  file: string | null;
  yaml: string;
  /** with several domains, each warning names its domain */
  warnings: (ImportWarning & { domain?: string })[];
}

async function virsh(args: string[], o: ImportCommandOptions): Promise<string> {
  const { execa } = await import('execa');
  try {
    const r = await execa('virsh', [...(o.connect ? ['-c', o.connect] : []), ...args], {
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
    throw new BackendError('VirshFailed', `virsh ${args.join(' ')}: ${(e.stderr || e.shortMessage || String(err)).trim()}`, { cause: err });
  }
}

function parseDomain(xml: string, source: string): ImportResult {
  try {
    return importDomainXml(xml);
  } catch (err) {
    throw new TendError('InvalidDomainXml', `${source}: ${(err as Error).message}`, EXIT.invalidInput, { cause: err });
  }
}

/** The XML of every domain asked for, with where it came from (for error messages). */
async function readDomains(o: ImportCommandOptions, cwd: string): Promise<{ xml: string; source: string }[]> {
  const names = [...(o.domain ? [o.domain] : []), ...(o.domains ?? [])];
  const given = [o.xml !== undefined, names.length > 0, o.all === true].filter(Boolean).length;
  if (given === 0) throw new UsageError('tend import needs --xml FILE, libvirt domain names or --all', 'MissingArgument');
  if (given > 1) throw new UsageError('give one of --xml FILE, domain names or --all, not several', 'ConflictingOptions');
  if (o.xml) {
    const path = resolve(cwd, o.xml);
    try {
      return [{ xml: await readFile(path, 'utf8'), source: o.xml }];
    } catch (err) {
      throw new NotFoundError('XmlNotFound', `cannot read ${path}: ${(err as Error).message}`);
    }
  }
  if (o.all) {
    const listed = (await virsh(['list', '--all', '--name'], o))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    if (listed.length === 0)
      throw new NotFoundError('NoDomains', `virsh list --all --name lists no domains${o.connect ? ` on ${o.connect}` : ''}`);
    names.push(...listed);
  }
  const out: { xml: string; source: string }[] = [];
  for (const n of new Set(names)) out.push({ xml: await virsh(['dumpxml', n], o), source: `virsh dumpxml ${n}` });
  return out;
}

export async function importCommand(o: ImportCommandOptions): Promise<ImportCommandResult> {
  const cwd = o.cwd ?? process.cwd();
  const domains = (await readDomains(o, cwd)).map((d) => parseDomain(d.xml, d.source));
  const warnings: ImportCommandResult['warnings'] = [];
  const seen = new Set<string>();
  for (const d of domains) {
    if (seen.has(d.name)) {
      let i = 2;
      while (seen.has(`${d.name}-${i}`)) i++;
      d.warnings.push({ part: 'name', message: `another domain is also named "${d.name}" as a tend name: imported as "${d.name}-${i}"` });
      d.name = `${d.name}-${i}`;
    }
    seen.add(d.name);
  }
  const many = domains.length > 1;
  for (const d of domains) warnings.push(...d.warnings.map((w) => (many ? { domain: d.rawName, ...w } : w)));
  const name = many ? normaliseName(basename(cwd)) : (domains[0] as ImportResult).name;
  const yaml = projectYaml(name, domains);
  const services = domains.map((d) => ({ name: d.name, domain: d.rawName }));
  if (o.output === '-') return { name, services, file: null, yaml, warnings };
  const file = resolve(cwd, o.output ?? 'tend.yaml');
  if (existsSync(file) && !o.force) throw new UsageError(`${file} exists: pass --force to overwrite it, or -o OTHER.yaml`, 'FileExists');
  await writeFile(file, yaml);
  return { name, services, file, yaml, warnings };
}

function warningLine(w: ImportCommandResult['warnings'][number]): string {
  return `warning: ${w.domain ? `${w.domain}: ` : ''}${w.part}: ${w.message}`;
}

function wroteLine(r: ImportCommandResult): string {
  const what = r.services.length > 1 ? `services ${r.services.map((s) => s.name).join(', ')}` : `service ${r.services[0]?.name ?? r.name}`;
  return `wrote ${r.file} (${what}); check it with: tend validate -f ${r.file}`;
}

export function renderImport(r: ImportCommandResult): string {
  const lines = r.warnings.map(warningLine);
  if (r.file) lines.push(wroteLine(r));
  else lines.unshift(r.yaml.trimEnd());
  return lines.join('\n');
}

export const command: CliCommand = {
  name: 'import',
  description: 'write a tend.yaml from libvirt domains (--xml FILE, domain names or --all), warning about every part it cannot map',
  examples: ['tend import --xml vm.xml', 'tend import web01 -o - ', 'tend import -c qemu:///system web01 db01', 'tend import --all'],
  configure: (c) =>
    c
      .argument('[domains...]', 'libvirt domain names (read with virsh dumpxml)')
      .option('--xml <file>', 'libvirt domain XML file')
      .option('--all', 'every domain virsh list --all --name lists, one service each')
      .option('-o, --output <file>', 'file to write (default tend.yaml; - prints it)')
      .option('--force', 'overwrite the output file')
      .option('-c, --connect <uri>', 'libvirt URI for virsh'),
  async run({ g, args, opts, io }) {
    const domains = (args[0] as string[] | undefined) ?? [];
    const o = opts as { xml?: string; all?: boolean; output?: string; force?: boolean; connect?: string };
    const r = await importCommand({ ...g, ...(domains.length ? { domains } : {}), ...o });
    if (g.json) io.json(r);
    else if (r.file) {
      for (const w of r.warnings) io.err(warningLine(w));
      io.out(wroteLine(r));
    } else io.out(renderImport(r));
    return EXIT.ok;
  },
};
