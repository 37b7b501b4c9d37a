/**
 * Download an image into the store folder: a temp file, verified against the declared
 * checksum (or the publisher's sidecar checksum file), decompressed when the URL ends in
 * .xz / .zst, and only then promoted by rename to its content-addressed name. On any failure
 * (HTTP error, checksum mismatch, cancellation) every temp file is removed.
 */
import { copyFile, rename, rm, stat, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { BackendError, TendError } from '../../schemas/errors.js';
import { ensureDir } from '../state/atomic.js';
import { blobPath, sweepTemps, tempPath } from './blob.js';
import { findInSumsFile, formatChecksum, hashFile, parseChecksum, type Checksum } from './checksum.js';
import { downloadTo, fetchText, localFileError, type DownloadProgress } from './http.js';
import { resolveOciBlob } from './oci.js';

export type { DownloadProgress } from './http.js';

export interface DownloadOptions {
  /** declared "sha256:<hex>" / "sha512:<hex>" */
  checksum?: string | null;
  /** a checksum file that must list the image (the catalog's); when set, no other sidecar is tried */
  checksumUrl?: string | null;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  onMessage?: (msg: string) => void;
  /** retries after a dropped connection (default 1) */
  retries?: number;
  /**
   * A checksum of this type must be published next to the image (ov's `checksum: {type: sha256}`
   * without a value): the sidecars of `sidecarUrls(url, type)` are tried, and without one the
   * download fails instead of going unverified.
   */
  sidecar?: 'sha256' | 'sha512' | null;
}

export interface DownloadResult {
  /** the promoted file in the store folder */
  path: string;
  /** "sha256:<hex>" of the stored (decompressed) file */
  sha256: string;
  size: number;
  /** the checksum the download was verified against, or null when none could be found */
  verifiedAgainst: string | null;
}

export function compression(url: string): 'xz' | 'zst' | null {
  const p = new URL(url).pathname.toLowerCase();
  if (p.endsWith('.xz')) return 'xz';
  if (p.endsWith('.zst') || p.endsWith('.zstd')) return 'zst';
  return null;
}

function fileNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
}

async function readText(url: string, signal?: AbortSignal): Promise<string | null> {
  if (url.startsWith('file:')) {
    try {
      return await readFile(fileURLToPath(url), 'utf8');
    } catch {
      return null;
    }
  }
  return fetchText(url, signal);
}

/**
 * Sidecar files tried, in order, when nothing is declared; with `type`, only that algorithm's
 * (ov resolves `<url>.SHA256`, `.sha256` and `.sha256sum`).
 */
export function sidecarUrls(url: string, type?: 'sha256' | 'sha512'): string[] {
  const u = new URL(url);
  const dir = new URL('.', u).toString();
  if (type) {
    const up = type.toUpperCase();
    return [`${url}.${up}`, `${url}.${type}`, `${url}.${type}sum`, `${dir}${up}SUMS`];
  }
  return [`${url}.sha256`, `${url}.sha512`, `${dir}SHA256SUMS`, `${dir}SHA512SUMS`];
}

async function expectedChecksum(url: string, opts: DownloadOptions): Promise<Checksum | null> {
  if (opts.checksum) {
    const c = parseChecksum(opts.checksum);
    if (!c) throw new BackendError('BadChecksum', `"${opts.checksum}" is not a sha256:<hex> or sha512:<hex> checksum`);
    return c;
  }
  const name = fileNameOf(url);
  if (opts.checksumUrl) {
    let text: string | null;
    try {
      text = await readText(opts.checksumUrl, opts.signal);
    } catch (err) {
      throw new BackendError('ChecksumUnavailable', `cannot fetch the checksum file ${opts.checksumUrl}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const c = text === null ? null : findInSumsFile(text, name);
    if (!c) throw new BackendError('ChecksumUnavailable', `the checksum file ${opts.checksumUrl} does not list ${name}`);
    return c;
  }
  const sides = sidecarUrls(url, opts.sidecar ?? undefined);
  for (const side of sides) {
    let text: string | null = null;
    try {
      text = await readText(side, opts.signal);
    } catch {
      continue; // a missing or broken sidecar is not an error: there may be none
    }
    const c = text === null ? null : findInSumsFile(text, name);
    if (c && (!opts.sidecar || c.algo === opts.sidecar)) {
      opts.onMessage?.(`verifying against ${side}`);
      return c;
    }
  }
  if (opts.sidecar) {
    throw new BackendError(
      'ChecksumUnavailable',
      `no ${opts.sidecar} checksum of ${url} is published next to it (tried ${sides.join(', ')}); ` +
        `the file asks for one (checksum: {type: ${opts.sidecar}}): write its value, checksum: {type: ${opts.sidecar}, value: <hex>}`,
    );
  }
  return null;
}

export async function downloadImage(url: string, imagesDir: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  await ensureDir(imagesDir);
  await sweepTemps(imagesDir);
  // an oci:// reference is a blob of a registry, verified against its digest from the manifest
  const oci = url.startsWith('oci://') ? await resolveOciBlob(url, { signal: opts.signal }) : null;
  if (oci) opts.onMessage?.(`pulling ${oci.digest} (${oci.mediaType}) from ${url}`);
  const expected = oci && !opts.checksum ? parseChecksum(oci.digest) : await expectedChecksum(url, opts);
  if (!expected) opts.onMessage?.(`no checksum declared or published for ${url}: the download is not verified`);
  const raw = tempPath(imagesDir, 'download');
  const plain = tempPath(imagesDir, 'plain');
  try {
    if (url.startsWith('file:')) {
      await copyFile(fileURLToPath(url), raw);
    } else if (oci) {
      await downloadTo(oci.url, raw, { signal: opts.signal, onProgress: opts.onProgress, retries: opts.retries, headers: oci.headers });
    } else {
      await downloadTo(url, raw, { signal: opts.signal, onProgress: opts.onProgress, retries: opts.retries });
    }
    if (expected) {
      const actual = await hashFile(raw, expected.algo, opts.signal);
      if (actual !== expected.hex) {
        throw new BackendError(
          'ChecksumMismatch',
          `checksum mismatch for ${url}: expected ${formatChecksum(expected)}, got ${expected.algo}:${actual}`,
        );
      }
    }
    const comp = compression(url);
    let final = raw;
    if (comp) {
      opts.onMessage?.(`decompressing ${fileNameOf(url)}`);
      try {
        await execa(comp === 'xz' ? 'xz' : 'zstd', ['-dc', raw], { stdout: { file: plain }, cancelSignal: opts.signal });
      } catch (err) {
        throw new BackendError(
          'DecompressFailed',
          `cannot decompress ${url} with ${comp}: ${(err as { stderr?: string }).stderr || (err as Error).message}`,
          { cause: err },
        );
      }
      await rm(raw, { force: true });
      final = plain;
    }
    const sha = expected?.algo === 'sha256' && !comp ? expected.hex : await hashFile(final, 'sha256', opts.signal);
    const size = (await stat(final)).size;
    const dest = blobPath(imagesDir, sha);
    await rename(final, dest);
    return { path: dest, sha256: `sha256:${sha}`, size, verifiedAgainst: expected ? formatChecksum(expected) : null };
  } catch (err) {
    await rm(raw, { force: true });
    await rm(plain, { force: true });
    if (opts.signal?.aborted && !(err instanceof BackendError && err.reason === 'DownloadAborted')) {
      throw new BackendError('DownloadAborted', `download of ${url} was cancelled`, { cause: err });
    }
    // a local file error (copying a file: URL, hashing, promoting) is said plainly, like a failed write
    if (!(err instanceof TendError) && typeof (err as NodeJS.ErrnoException).code === 'string') {
      throw localFileError(err as NodeJS.ErrnoException, imagesDir, `storing ${url} in`);
    }
    throw err;
  }
}
