import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { importImage, inspectImage, listImages, removeImage, verifyImage } from '../../src/images/store.js';
import { resolveImage } from '../../src/images/resolve.js';
import { createOverlay, createVolume, qemuImgInfo, resizeImage } from '../../src/images/qemu-img.js';
import { BackendError, NotFoundError } from '../../schemas/errors.js';
import { IMAGE_FILES, imagesDir, projectDir, vmFile } from '../../src/state/paths.js';

const work = mkdtempSync(join(tmpdir(), 'tend-store-'));
const GiB = 1024 ** 3;

function makeImage(name: string, size = '64M', fill = 'A'): string {
  const p = join(work, name);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p, size]);
  // put some guest data in it so a write to the base would show
  execFileSync('qemu-io', ['-c', `write -P 0x${fill.charCodeAt(0).toString(16)} 0 1M`, p], { stdio: 'ignore' });
  return p;
}
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

test('importImage copies, hashes and registers; list, inspect, verify, rm', async () => {
  const root = mkdtempSync(join(work, 'root-'));
  const built = makeImage('built.qcow2');
  const img = await importImage(root, 'debian:12', built);
  assert.equal(img.name, 'debian:12');
  assert.equal(img.format, 'qcow2');
  assert.equal(img.checksum, `sha256:${sha(built)}`);
  assert.ok(img.path.startsWith(imagesDir(root)));
  assert.ok(existsSync(built), 'copy keeps the source');
  assert.deepEqual(
    (await listImages(root)).map((i) => i.name),
    ['debian:12'],
  );
  assert.equal((await inspectImage(root, 'debian:bookworm'))?.path, img.path, 'aliases find the catalog name');
  assert.deepEqual(await verifyImage(root, 'debian:12'), { ok: true, expected: img.checksum, actual: img.checksum });

  // a corrupted stored file fails verification
  const bytes = readFileSync(img.path);
  bytes[bytes.length - 1] ^= 0xff;
  writeFileSync(img.path, bytes);
  const v = await verifyImage(root, 'debian:12');
  assert.equal(v.ok, false);
  assert.notEqual(v.actual, v.expected);

  assert.equal(await removeImage(root, 'debian:12'), true);
  assert.equal(existsSync(img.path), false);
  assert.equal(await inspectImage(root, 'debian:12'), null);
  assert.equal(await removeImage(root, 'debian:12'), false);
  await assert.rejects(verifyImage(root, 'debian:12'), NotFoundError);
});

test('importImage with move takes the file; a missing file is ImageNotFound', async () => {
  const root = mkdtempSync(join(work, 'root-'));
  const built = makeImage('moved.qcow2');
  const img = await importImage(root, 'mine', built, { move: true });
  assert.equal(existsSync(built), false);
  assert.ok(existsSync(img.path));
  await assert.rejects(
    importImage(root, 'x', join(work, 'nope.qcow2')),
    (e: unknown) => e instanceof NotFoundError && e.reason === 'ImageNotFound',
  );
});

test('a damaged index is reported with its path, kept aside and rebuilt from the files on disk: no image is lost', async () => {
  const root = mkdtempSync(join(work, 'root-'));
  const a = await importImage(root, 'debian:12', makeImage('c.qcow2', '64M', 'C'));
  const b = await importImage(root, 'web-base', makeImage('d.qcow2', '64M', 'D'));
  const index = join(imagesDir(root), IMAGE_FILES.index);
  const whole = readFileSync(index, 'utf8');
  // cut inside the second entry: the first is still legible, the second is not
  writeFileSync(index, whole.slice(0, whole.indexOf('"web-base": {') + 40));
  const reports: string[] = [];
  const listed = await listImages(root, { onCorrupt: (m) => reports.push(m) });
  assert.equal(reports.length, 1);
  assert.match(reports[0], new RegExp(`image index ${index.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was damaged`));
  assert.match(reports[0], /kept as .*catalog\.json\.damaged-/);
  const kept = readdirSync(imagesDir(root)).filter((f) => f.startsWith(`${IMAGE_FILES.index}.damaged-`));
  assert.equal(kept.length, 1, 'the damaged file is kept');
  // the legible entry keeps its name; the other image is registered under its file name, hashed again
  const byPath = new Map(listed.map((i) => [i.path, i]));
  assert.equal(byPath.get(a.path)?.name, 'debian:12');
  assert.equal(byPath.get(a.path)?.checksum, a.checksum);
  assert.equal(byPath.get(b.path)?.name, basename(b.path));
  assert.equal(byPath.get(b.path)?.checksum, b.checksum);
  assert.equal(byPath.get(b.path)?.format, 'qcow2');
  // rebuilt once: the next reader sees a good index, and a new image joins the others
  await importImage(root, 'c', makeImage('e.qcow2', '64M', 'E'));
  const again: string[] = [];
  assert.deepEqual(
    (await listImages(root, { onCorrupt: (m) => again.push(m) })).map((i) => i.name).sort(),
    ['c', 'debian:12', basename(b.path)].sort(),
  );
  assert.deepEqual(again, []);
  // garbage: every file is still there, under its file name
  writeFileSync(index, '{ not json');
  assert.equal((await listImages(root)).length, 3);
  assert.equal((await inspectImage(root, basename(a.path)))?.checksum, a.checksum);
});

test('overlay: base stays byte-identical, overlay grown to the disk size; rm refuses while a VM disk uses the base', async () => {
  const root = mkdtempSync(join(work, 'root-'));
  const img = await importImage(root, 'base', makeImage('base.qcow2'));
  const before = sha(img.path);
  const base = await resolveImage(
    root,
    { kind: 'catalog', ref: 'base', format: null, checksum: null, os: null },
    {
      catalog: (n) =>
        n === 'base'
          ? {
              name: 'base',
              aliases: [],
              url: 'http://127.0.0.1:1/x',
              checksum: null,
              checksumUrl: null,
              format: 'qcow2',
              user: 'tend',
              os: 'debian',
              buildable: false,
            }
          : undefined,
    },
  );
  assert.equal(base.path, img.path);
  const proj = projectDir(root, 'p', '/somewhere');
  const disk = vmFile(proj, 'web', 'disk');
  await createOverlay(base, disk, 2);
  const info = await qemuImgInfo(disk);
  assert.equal(info.format, 'qcow2');
  assert.equal(info.backingFile, img.path);
  assert.equal(info.virtualSize, 2 * GiB);
  // write into the overlay, then the base must be unchanged
  execFileSync('qemu-io', ['-c', 'write -P 0x42 0 4M', disk], { stdio: 'ignore' });
  assert.equal(sha(img.path), before);

  await assert.rejects(
    removeImage(root, 'base'),
    (e: unknown) => e instanceof BackendError && e.reason === 'ImageInUse' && e.message.includes(disk),
  );
  assert.ok(existsSync(img.path));

  // resize grows only
  assert.equal(await resizeImage(disk, 1), false);
  assert.equal(await resizeImage(disk, 3), true);
  assert.equal((await qemuImgInfo(disk)).virtualSize, 3 * GiB);

  // an overlay smaller than the base keeps the base's size
  const small = join(work, 'small.qcow2');
  await createOverlay(base, small, null);
  assert.equal((await qemuImgInfo(small)).virtualSize, 64 * 1024 * 1024);
});

test('qemu-img failures are BackendErrors carrying its stderr', async () => {
  await assert.rejects(
    qemuImgInfo(join(work, 'absent.qcow2')),
    (e: unknown) => e instanceof BackendError && e.reason === 'QemuImgFailed' && /absent\.qcow2/.test(e.message),
  );
  const vol = join(work, 'vol', 'data.qcow2');
  await createVolume(vol, 1);
  assert.equal((await qemuImgInfo(vol)).virtualSize, GiB);
});

test('path images: format detected, id changes when the file is replaced, declared checksum enforced', async () => {
  const root = mkdtempSync(join(work, 'root-'));
  const p = makeImage('local.qcow2', '32M');
  const src = { kind: 'path', ref: p, format: null, checksum: null, os: null } as const;
  const a = await resolveImage(root, src);
  assert.equal(a.path, p);
  assert.equal(a.format, 'qcow2');
  assert.equal(a.virtualSize, 32 * 1024 * 1024);
  makeImage('local.qcow2', '32M', 'B');
  utimesSync(p, new Date(), new Date(Date.now() + 5000));
  const b = await resolveImage(root, src);
  assert.notEqual(a.id, b.id);

  const good = await resolveImage(root, { ...src, checksum: `sha256:${sha(p)}` });
  assert.equal(good.id, `sha256:${sha(p)}`);
  await assert.rejects(
    resolveImage(root, { ...src, checksum: `sha256:${'0'.repeat(64)}` }),
    (e: unknown) => e instanceof BackendError && e.reason === 'ChecksumMismatch',
  );
  await assert.rejects(
    resolveImage(root, { ...src, ref: join(work, 'gone.qcow2') }),
    (e: unknown) => e instanceof NotFoundError && e.reason === 'ImageNotFound',
  );
});

test('unknown catalog name: UnknownImage with a suggestion', async () => {
  const root = mkdtempSync(join(work, 'root-'));
  await assert.rejects(
    resolveImage(root, { kind: 'catalog', ref: 'debain:12', format: null, checksum: null, os: null }),
    (e: unknown) => e instanceof NotFoundError && e.reason === 'UnknownImage' && e.message.includes('did you mean debian:12'),
  );
});
