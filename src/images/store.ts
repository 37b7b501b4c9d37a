/**
 * The image store: base images under imagesDir(stateRoot), content-addressed
 * (`sha256-<hex>`), plus an index (IMAGE_FILES.index) mapping names — catalog names such as
 * `debian:12`, URLs, or names given to `importImage` — to files. Base images are never written
 * after promotion: VM disks are overlays that read them. The index is written atomically and
 * read defensively: a damaged index is reported, kept aside and rebuilt from the files on disk.
 */
import { copyFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { BackendError, NotFoundError, TendError, UsageError } from '../../schemas/errors.js';
import type { ImageSource } from '../../schemas/model.js';
import { ensureDir, exists, readJson, writeJsonAtomic, type CorruptFile } from '../state/atomic.js';
import { validateImageIndex } from '../state/validators.generated.js';
import { FILES, IMAGE_FILES, imagesDir, projectsDir, shortHash, templatesDir } from '../state/paths.js';
import { blobPath, tempPath } from './blob.js';
import { catalogEntry, type CatalogEntry } from './catalog.js';
import { hashFile } from './checksum.js';
import { rebuildIndex } from './index-rebuild.js';
import { downloadImage, type DownloadProgress } from './download.js';
import { localFileError } from './http.js';
import { withStoreLock } from './lock.js';
import { qemuImgInfo } from './qemu-img.js';
import type { StoredImage } from './stored-image.js';

export type { StoredImage } from './stored-image.js';

export interface PullOptions {
  signal?: AbortSignal;
  /** human progress lines */
  onProgress?: (msg: string) => void;
  /** raw byte progress, for a progress bar */
  onDownload?: (p: DownloadProgress) => void;
  /** catalog lookup (default: the built-in catalog); tests inject their own */
  catalog?: (name: string) => CatalogEntry | undefined;
}

interface IndexFile {
  version: 1;
  images: Record<string, StoredImage>;
}

export const imageIndexSchema = {
  $id: 'tend:state/image-index',
  type: 'object',
  required: ['images'],
  properties: {
    version: { const: 1 },
    images: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['name', 'path', 'format', 'checksum', 'size', 'source', 'addedAt'],
        properties: {
          name: { type: 'string' },
          path: { type: 'string' },
          format: { type: 'string' },
          checksum: { type: 'string' },
          size: { type: 'number' },
          source: { type: 'string' },
          addedAt: { type: 'string' },
          verifiedAgainst: { type: ['string', 'null'] },
        },
      },
    },
  },
} as const;

function indexPath(root: string): string {
  return join(imagesDir(root), IMAGE_FILES.index);
}

/** Told when the index was found damaged and rebuilt: what happened, with the paths, in plain words. */
export type IndexReport = (message: string) => void;

/**
 * The index. A damaged one (not JSON, or not an index) is never read as empty, which would
 * orphan every stored image and let the next write drop their names: it is kept aside, rebuilt
 * from the files on disk (index-rebuild.ts) and written back, and `report` is told.
 */
async function readIndex(root: string, report?: IndexReport): Promise<IndexFile> {
  let damaged = false;
  const j = await readJson<IndexFile>(indexPath(root), validateImageIndex, () => (damaged = true));
  if (j) return { version: 1, images: j.images };
  if (!damaged) return { version: 1, images: {} };
  return withStoreLock(`${indexPath(root)}.lock`, () => readOrRebuild(root, report));
}

/** readIndex for a caller holding the index lock: another process may have rebuilt it meanwhile. */
async function readOrRebuild(root: string, report?: IndexReport): Promise<IndexFile> {
  let damage: CorruptFile | undefined;
  const j = await readJson<IndexFile>(indexPath(root), validateImageIndex, (c) => (damage = c));
  if (j) return { version: 1, images: j.images };
  if (!damage) return { version: 1, images: {} };
  const rebuilt = await rebuildIndex(imagesDir(root), indexPath(root), damage);
  await writeJsonAtomic(indexPath(root), { version: 1, images: rebuilt.images });
  report?.(rebuilt.message);
  return { version: 1, images: rebuilt.images };
}

async function updateIndex(root: string, fn: (idx: IndexFile) => void): Promise<void> {
  await withStoreLock(`${indexPath(root)}.lock`, async () => {
    const idx = await readOrRebuild(root);
    fn(idx);
    await writeJsonAtomic(indexPath(root), idx);
  });
}

/** The canonical store name: catalog aliases map to their entry's name. */
function canonicalName(nameOrUrl: string): string {
  return catalogEntry(nameOrUrl)?.name ?? nameOrUrl;
}

/** Copy (or move) a built image into the store and register it under `name`. */
export async function importImage(stateRoot: string, name: string, file: string, opts: { move?: boolean } = {}): Promise<StoredImage> {
  const src = resolvePath(file);
  if (!(await exists(src))) throw new NotFoundError('ImageNotFound', `cannot import ${src}: no such file`);
  const info = await qemuImgInfo(src);
  const dir = imagesDir(stateRoot);
  await ensureDir(dir);
  const tmp = tempPath(dir, 'import');
  try {
    if (opts.move) {
      try {
        await rename(src, tmp);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await copyFile(src, tmp);
        await rm(src, { force: true });
      }
    } else {
      await copyFile(src, tmp);
    }
    const sha = await hashFile(tmp, 'sha256');
    const dest = blobPath(dir, sha);
    await rename(tmp, dest);
    const img: StoredImage = {
      name: canonicalName(name),
      path: dest,
      format: info.format,
      checksum: `sha256:${sha}`,
      size: (await stat(dest)).size,
      source: `file:${src}`,
      addedAt: new Date().toISOString(),
      verifiedAgainst: null,
    };
    await updateIndex(stateRoot, (idx) => {
      idx.images[img.name] = img;
    });
    return img;
  } catch (err) {
    await rm(tmp, { force: true });
    if (!(err instanceof TendError) && typeof (err as NodeJS.ErrnoException).code === 'string') {
      throw localFileError(err as NodeJS.ErrnoException, dir, `importing ${src} into`);
    }
    throw err;
  }
}

export async function listImages(stateRoot: string, opts: { onCorrupt?: IndexReport } = {}): Promise<StoredImage[]> {
  const idx = await readIndex(stateRoot, opts.onCorrupt);
  return Object.values(idx.images).sort((a, b) => a.name.localeCompare(b.name));
}

/** The stored image for a name, alias or URL; null when absent (or its file has gone). */
export async function inspectImage(
  stateRoot: string,
  nameOrUrl: string,
  opts: { onCorrupt?: IndexReport } = {},
): Promise<StoredImage | null> {
  const idx = await readIndex(stateRoot, opts.onCorrupt);
  const img = idx.images[nameOrUrl] ?? idx.images[canonicalName(nameOrUrl)];
  if (!img || !(await exists(img.path))) return null;
  return img;
}

/** Re-hash the stored file and compare with the recorded checksum. */
export async function verifyImage(stateRoot: string, name: string): Promise<{ ok: boolean; expected: string; actual: string }> {
  const idx = await readIndex(stateRoot);
  const img = idx.images[name] ?? idx.images[canonicalName(name)];
  if (!img) throw new NotFoundError('ImageNotFound', `no image named "${name}" in the store (tend image ls)`);
  if (!(await exists(img.path))) return { ok: false, expected: img.checksum, actual: 'missing' };
  const actual = `sha256:${await hashFile(img.path, 'sha256')}`;
  return { ok: actual === img.checksum, expected: img.checksum, actual };
}

/**
 * VM disks (overlays) in any project whose backing file is `path`, and (`templates`) the frozen
 * disks of warm templates backed by it (src/qemu/templates.ts): a template is a user of its base image.
 */
export async function overlayUsers(stateRoot: string, path: string, o: { templates?: boolean } = { templates: true }): Promise<string[]> {
  const users: string[] = [];
  const dirs: string[] = [];
  for (const p of await readdir(projectsDir(stateRoot)).catch(() => [] as string[])) {
    const vmsRoot = join(projectsDir(stateRoot), p, 'vms');
    for (const vm of await readdir(vmsRoot).catch(() => [] as string[])) dirs.push(join(vmsRoot, vm));
  }
  if (o.templates)
    for (const t of await readdir(templatesDir(stateRoot)).catch(() => [] as string[])) dirs.push(join(templatesDir(stateRoot), t));
  for (const dir of dirs) {
    const disk = join(dir, FILES.disk);
    if (!(await exists(disk))) continue;
    const info = await qemuImgInfo(disk).catch(() => null);
    if (info?.backingFile && resolvePath(dir, info.backingFile) === path) users.push(disk);
  }
  return users;
}

/**
 * Unregister `name`; delete its file unless another name shares it. Refused (ImageInUse) while
 * a VM disk still uses the file as its base, unless `force` (those VMs' disks then break).
 */
export async function removeImage(stateRoot: string, name: string, opts: { force?: boolean } = {}): Promise<boolean> {
  const idx = await readIndex(stateRoot);
  const key = idx.images[name] ? name : canonicalName(name);
  const img = idx.images[key];
  if (!img) return false;
  const shared = Object.values(idx.images).some((o) => o.name !== key && o.path === img.path);
  if (!shared && !opts.force) {
    const users = await overlayUsers(stateRoot, img.path);
    if (users.length > 0) {
      throw new BackendError(
        'ImageInUse',
        `image "${key}" is the base of ${users.length} VM disk(s): ${users.join(', ')}; destroy those VMs first (or pass --force)`,
      );
    }
  }
  await updateIndex(stateRoot, (i) => {
    delete i.images[key];
  });
  if (!shared) await rm(img.path, { force: true });
  return true;
}

/** Pulls running in this process, with everyone waiting for each (they all hear its progress). */
const inflight = new Map<string, { pull: Promise<StoredImage>; listeners: Set<PullOptions> }>();

/**
 * Download (url, catalog) or import (path) an image into the store. Concurrent pulls of one
 * name in this process share one download; a lock file keeps two processes from racing, and a
 * process that waited for another's download uses its result.
 */
export function pullImage(stateRoot: string, src: ImageSource, opts: PullOptions = {}): Promise<StoredImage> {
  if (src.kind === 'path') return importImage(stateRoot, src.ref, src.ref);
  const entry = src.kind === 'catalog' ? (opts.catalog ?? catalogEntry)(src.ref) : undefined;
  if (src.kind === 'catalog' && !entry) throw new UsageError(`"${src.ref}" is not in the image catalog`, 'UnknownImage');
  const name = entry?.name ?? src.ref;
  const key = `${stateRoot}\0${name}`;
  const running = inflight.get(key);
  if (running) {
    // a second VM of the same image: it shares the download, and its progress
    running.listeners.add(opts);
    opts.onProgress?.(`waiting for the download of ${name} (started for another VM)`);
    return running.pull;
  }
  const listeners = new Set<PullOptions>([opts]);
  const shared: PullOptions = {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.catalog ? { catalog: opts.catalog } : {}),
    onProgress: (m) => listeners.forEach((l) => l.onProgress?.(m)),
    ...(opts.onDownload ? { onDownload: (d) => listeners.forEach((l) => l.onDownload?.(d)) } : {}),
  };
  const pull = doPull(stateRoot, name, src, entry, shared).finally(() => inflight.delete(key));
  inflight.set(key, { pull, listeners });
  return pull;
}

async function doPull(
  stateRoot: string,
  name: string,
  src: ImageSource,
  entry: CatalogEntry | undefined,
  opts: PullOptions,
): Promise<StoredImage> {
  const url = entry?.url ?? src.ref;
  const started = new Date().toISOString();
  const dir = imagesDir(stateRoot);
  return withStoreLock(
    join(dir, `.pull-${shortHash(name, 16)}.lock`),
    async () => {
      const already = await inspectImage(stateRoot, name, opts.onProgress ? { onCorrupt: opts.onProgress } : {});
      if (already && already.addedAt >= started) return already; // another process pulled it while we waited
      opts.onProgress?.(`downloading ${name === url ? url : `${name} from ${url}`}`);
      let lastPct = -1;
      const res = await downloadImage(url, dir, {
        checksum: src.checksum ?? entry?.checksum ?? null,
        checksumUrl: src.checksum ? null : (entry?.checksumUrl ?? null),
        sidecar: src.checksum ? null : (src.sidecar ?? null),
        signal: opts.signal,
        onMessage: opts.onProgress,
        onProgress: (p) => {
          // a bar (or a periodic line) drawn from the bytes replaces the 10 % lines
          if (opts.onDownload) return opts.onDownload(p);
          if (p.total) {
            const pct = Math.floor((p.received / p.total) * 10) * 10;
            if (pct > lastPct) {
              lastPct = pct;
              opts.onProgress?.(`${name}: ${pct}% of ${(p.total / 1024 ** 2).toFixed(1)} MiB`);
            }
          }
        },
      });
      const format = src.format ?? (await qemuImgInfo(res.path)).format;
      const img: StoredImage = {
        name,
        path: res.path,
        format,
        checksum: res.sha256,
        size: res.size,
        source: url,
        addedAt: new Date().toISOString(),
        verifiedAgainst: res.verifiedAgainst,
      };
      await updateIndex(stateRoot, (idx) => {
        idx.images[name] = img;
      });
      return img;
    },
    opts.signal,
  );
}
