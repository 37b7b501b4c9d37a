/**
 * Rebuilding a damaged image index (images/catalog.json) from what is on disk, so no stored image
 * is lost: the damaged file is kept aside (catalog.json.damaged-<time>), every entry still legible
 * in it whose file exists is taken back as it was, and every other image file of the store
 * (content-addressed `sha256-<hex>`) is registered under its file name, hashed again (a name
 * cannot be recovered; `tend image pull NAME` of the same image finds the same file).
 */
import { copyFile, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CorruptFile } from '../state/atomic.js';
import { hashFile } from './checksum.js';
import { qemuImgInfo } from './qemu-img.js';
import type { StoredImage } from './stored-image.js';

const STR = '"((?:[^"\\\\]|\\\\.)*)"';
/** One entry as writeJsonAtomic writes it (JSON.stringify, keys in this order). */
const ENTRY = new RegExp(
  `"name":\\s*${STR},\\s*"path":\\s*${STR},\\s*"format":\\s*${STR},\\s*"checksum":\\s*${STR},\\s*"size":\\s*(\\d+),\\s*"source":\\s*${STR},\\s*"addedAt":\\s*${STR}`,
  'g',
);
const BLOB = /^sha256-[0-9a-f]{32}$/;

const unquote = (s: string): string => {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    return s;
  }
};

export async function rebuildIndex(
  dir: string,
  indexPath: string,
  damage: CorruptFile,
): Promise<{ images: Record<string, StoredImage>; message: string }> {
  const kept = `${indexPath}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await copyFile(indexPath, kept).catch(() => undefined);
  const text = await readFile(indexPath, 'utf8').catch(() => '');
  const images: Record<string, StoredImage> = {};
  const files = new Set((await readdir(dir).catch(() => [] as string[])).filter((f) => BLOB.test(f)));
  const covered = new Set<string>();
  let salvaged = 0;
  for (const m of text.matchAll(ENTRY)) {
    const [name, path, format, checksum] = [m[1], m[2], m[3], m[4]].map(unquote);
    const file = path.startsWith(`${dir}/`) ? path.slice(dir.length + 1) : '';
    if (!files.has(file)) continue; // only what is on disk
    images[name] = { name, path, format, checksum, size: Number(m[5]), source: unquote(m[6]), addedAt: unquote(m[7]) };
    covered.add(file);
    salvaged++;
  }
  let found = 0;
  for (const f of files) {
    if (covered.has(f)) continue;
    const path = join(dir, f);
    const st = await stat(path);
    images[f] = {
      name: f,
      path,
      format: (await qemuImgInfo(path).catch(() => null))?.format ?? 'raw',
      checksum: `sha256:${await hashFile(path, 'sha256')}`,
      size: st.size,
      source: 'recovered from the image store after its index was damaged',
      addedAt: new Date(st.mtimeMs).toISOString(),
      verifiedAgainst: null,
    };
    found++;
  }
  const message =
    `the image index ${indexPath} was damaged (${damage.error}): rebuilt from the ${files.size} image file(s) in ${dir} ` +
    `(${salvaged} entr${salvaged === 1 ? 'y' : 'ies'} recovered by name, ${found} registered under their file name); ` +
    `the damaged file is kept as ${kept}`;
  return { images, message };
}
