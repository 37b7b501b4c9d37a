/**
 * Checksums: "sha256:<hex>" / "sha512:<hex>" strings, hashing files, and reading the
 * publishers' checksum files (GNU `hex  name` / `hex *name`, BSD `SHA256 (name) = hex`,
 * or a single bare digest as in `<file>.sha256`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export type HashAlgo = 'sha256' | 'sha512';

export interface Checksum {
  algo: HashAlgo;
  hex: string;
}

export function parseChecksum(s: string): Checksum | null {
  const m = /^(?:(sha256|sha512)[:=])?([0-9a-fA-F]+)$/i.exec(s.trim());
  if (!m) return null;
  const hex = m[2].toLowerCase();
  const algo = (m[1]?.toLowerCase() as HashAlgo | undefined) ?? algoForLength(hex.length);
  if (!algo || hex.length !== (algo === 'sha256' ? 64 : 128)) return null;
  return { algo, hex };
}

export function formatChecksum(c: Checksum): string {
  return `${c.algo}:${c.hex}`;
}

function algoForLength(n: number): HashAlgo | undefined {
  return n === 64 ? 'sha256' : n === 128 ? 'sha512' : undefined;
}

/**
 * The digest for `fileName` in a checksum file's text, or null when it is not listed.
 * A file holding just one digest (with or without a name) applies to any file.
 */
export function findInSumsFile(text: string, fileName: string): Checksum | null {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const bsd = /^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$/i.exec(line);
    if (bsd) {
      if (baseName(bsd[2]) === fileName) return parseChecksum(`${bsd[1].toLowerCase()}:${bsd[3]}`);
      continue;
    }
    const gnu = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})(?:\s+\*?(.+))?$/.exec(line);
    if (gnu && (gnu[2] === undefined || baseName(gnu[2].trim()) === fileName)) {
      if (gnu[2] === undefined && lines.length !== 1) continue;
      return parseChecksum(gnu[1]);
    }
  }
  return null;
}

function baseName(p: string): string {
  return p.replace(/^\.\//, '').split('/').pop() ?? p;
}

export async function hashFile(path: string, algo: HashAlgo, signal?: AbortSignal): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(path, { signal })) h.update(chunk as Buffer);
  return h.digest('hex');
}
