/**
 * From an image source in the model to a file QEMU can use as a base: a local path as is,
 * a URL downloaded into the store, or a catalog name (from the store when it has it, e.g.
 * after `tend image build debian:12`, else downloaded and verified).
 */
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { ImageSource } from '../../schemas/model.js';
import { BackendError, NotFoundError } from '../../schemas/errors.js';
import { didYouMean } from '../../schemas/names.js';
import { catalogEntry, catalogNames, type CatalogEntry } from './catalog.js';
import { hashFile, parseChecksum } from './checksum.js';
import type { DownloadProgress } from './download.js';
import { qemuImgInfo } from './qemu-img.js';
import { inspectImage, pullImage, type StoredImage } from './store.js';

export interface ResolvedImage {
  path: string;
  format: string;
  /** identity of the content: changes when the image is replaced */
  id: string;
  /** bytes */
  virtualSize: number;
}

export interface ResolveOptions {
  signal?: AbortSignal;
  onProgress?: (msg: string) => void;
  /** raw byte progress of a download, for a progress bar */
  onDownload?: (p: DownloadProgress) => void;
  /** catalog lookup (default: the built-in catalog); tests inject their own */
  catalog?: (name: string) => CatalogEntry | undefined;
  /** the VM's disk size (GiB): the size a bootc image is installed to */
  diskGiB?: number | null;
}

/** Local files whose declared checksum was verified: path -> "size:mtime:checksum". */
const verifiedLocal = new Map<string, string>();

export async function resolveImage(stateRoot: string, src: ImageSource, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  if (src.kind === 'path') return resolveLocal(src);
  if (src.kind === 'bootc') {
    const { bootcDisk } = await import('./bootc.js');
    const img = await bootcDisk(
      stateRoot,
      { ...src, kind: 'bootc' },
      { diskGiB: opts.diskGiB ?? null, signal: opts.signal, onProgress: opts.onProgress },
    );
    return fromStore(img, src);
  }
  if (src.kind === 'url') {
    const have = await inspectImage(stateRoot, src.ref, opts.onProgress ? { onCorrupt: opts.onProgress } : {});
    if (have && matchesDeclared(have, src.checksum)) return fromStore(have, src);
    return fromStore(await pullImage(stateRoot, src, opts), src);
  }
  const entry = (opts.catalog ?? catalogEntry)(src.ref);
  if (!entry) {
    const hint = didYouMean(src.ref, catalogNames());
    throw new NotFoundError(
      'UnknownImage',
      `"${src.ref}" is not a built-in image${hint ? `: did you mean ${hint}?` : ''} (known: ${catalogNames().join(', ')})`,
    );
  }
  const have = await inspectImage(stateRoot, entry.name, opts.onProgress ? { onCorrupt: opts.onProgress } : {});
  if (have && matchesDeclared(have, src.checksum)) return fromStore(have, src);
  try {
    return fromStore(await pullImage(stateRoot, src, opts), src);
  } catch (err) {
    if (opts.signal?.aborted || !entry.buildable) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new BackendError(
      'ImageUnavailable',
      `cannot download ${entry.name} (${why}); build it locally instead (works offline): tend image build ${entry.name}`,
      { cause: err },
    );
  }
}

function matchesDeclared(img: StoredImage, declared: string | null | undefined): boolean {
  if (!declared) return true;
  return img.checksum === declared || img.verifiedAgainst === declared;
}

async function fromStore(img: StoredImage, src: ImageSource): Promise<ResolvedImage> {
  const info = await qemuImgInfo(img.path);
  return { path: img.path, format: src.format ?? img.format, id: img.checksum, virtualSize: info.virtualSize };
}

async function resolveLocal(src: ImageSource): Promise<ResolvedImage> {
  const path = resolvePath(src.ref);
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new NotFoundError('ImageNotFound', `the image file ${path} does not exist (${(err as Error).message})`);
  }
  if (!st.isFile()) throw new NotFoundError('ImageNotFound', `the image ${path} is not a file`);
  const info = await qemuImgInfo(path);
  let id = `path:${path}:${st.size}:${st.mtimeMs}`;
  if (src.checksum) {
    const want = parseChecksum(src.checksum);
    if (!want) throw new BackendError('BadChecksum', `"${src.checksum}" is not a sha256:<hex> or sha512:<hex> checksum`);
    const stamp = `${st.size}:${st.mtimeMs}:${src.checksum}`;
    if (verifiedLocal.get(path) !== stamp) {
      const actual = await hashFile(path, want.algo);
      if (actual !== want.hex) {
        throw new BackendError('ChecksumMismatch', `checksum mismatch for ${path}: expected ${src.checksum}, got ${want.algo}:${actual}`);
      }
      verifiedLocal.set(path, stamp);
    }
    id = src.checksum;
  }
  return { path, format: src.format ?? info.format, id, virtualSize: info.virtualSize };
}
