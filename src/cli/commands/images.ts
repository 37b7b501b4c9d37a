/** `tend images` (holos): the built-in catalog (OS, user, firmware, how each is verified) and what is stored. */
import { EXIT } from '../../../schemas/errors.js';
import { outputFormat, outputOptions, printResult } from '../output-format.js';
import type { CliCommand } from '../command.js';
import { resolveStateRoot, type GlobalOptions } from '../context.js';
import { table } from '../output.js';
import { CATALOG } from '../../images/catalog.js';

export interface ImagesRow {
  name: string;
  aliases: string[];
  os: string;
  user: string;
  firmware: 'bios' | 'uefi';
  /** "sha256 (pinned)", "sha512 (SHA512SUMS)" */
  verification: string;
  stored: boolean;
}

export async function imagesCommand(g: GlobalOptions): Promise<ImagesRow[]> {
  const { listImages } = await import('../../images/store.js');
  const stored = new Set((await listImages(resolveStateRoot(g))).map((i) => i.name));
  return CATALOG.map((e) => ({
    name: e.name,
    aliases: [...e.aliases],
    os: e.os,
    user: e.user,
    firmware: e.firmware ?? 'bios',
    verification: e.checksum ? `${e.checksum.split(':')[0]} (pinned)` : `${e.checksumUrl?.split('/').pop() ?? 'none'} (publisher's file)`,
    stored: stored.has(e.name),
  }));
}

export const command: CliCommand = {
  name: 'images',
  description: 'the built-in images: names, OS, login user, firmware, how each download is verified, stored or not',
  examples: ['tend images', 'tend images --json', 'tend images -q'],
  configure: (c) => outputOptions(c, { wide: false }),
  async run({ g, io, opts }) {
    const format = outputFormat(g, opts);
    const rows = await imagesCommand(g);
    await printResult(io, format, {
      data: { images: rows },
      table: () =>
        table(
          ['NAME', 'ALIASES', 'OS', 'USER', 'FIRMWARE', 'VERIFIED BY', 'STORED'],
          rows.map((r) => [r.name, r.aliases.join(',') || '-', r.os, r.user, r.firmware, r.verification, r.stored ? 'yes' : 'no']),
        ),
      names: () => rows.map((r) => r.name),
    });
    return EXIT.ok;
  },
};
