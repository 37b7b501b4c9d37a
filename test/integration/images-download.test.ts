import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadImage } from '../../src/images/download.js';
import { resolveImage } from '../../src/images/resolve.js';
import { inspectImage } from '../../src/images/store.js';
import { imagesDir } from '../../src/state/paths.js';
import type { CatalogEntry } from '../../src/images/catalog.js';
import { BackendError } from '../../schemas/errors.js';

const work = mkdtempSync(join(tmpdir(), 'tend-dl-'));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');

// A real (tiny) qcow2 image as the payload, so the store can read its format.
execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'disk.qcow2'), '16M']);
const image = Buffer.concat([readFileSync(join(work, 'disk.qcow2')), Buffer.alloc(300_000, 7)]);
writeFileSync(join(work, 'disk.raw'), image);
execFileSync('xz', ['-k', '-T1', join(work, 'disk.raw')]);
execFileSync('zstd', ['-q', '-k', join(work, 'disk.raw')]);

const files = new Map<string, Buffer>([
  ['/a/disk.qcow2', image],
  ['/a/other.qcow2', Buffer.concat([image, Buffer.from('x')])],
  ['/a/SHA256SUMS', Buffer.from(`${sha256(image)}  disk.qcow2\n${'0'.repeat(64)}  other.qcow2\n`)],
  ['/b/disk.img', image],
  ['/b/disk.img.sha512', Buffer.from(`${sha512(image)}  disk.img\n`)],
  ['/c/disk.raw.xz', readFileSync(join(work, 'disk.raw.xz'))],
  ['/c/disk.raw.zst', readFileSync(join(work, 'disk.raw.zst'))],
  [
    '/c/SHA256SUMS',
    Buffer.from(
      `${sha256(readFileSync(join(work, 'disk.raw.xz')))} *disk.raw.xz\n${sha256(readFileSync(join(work, 'disk.raw.zst')))} *disk.raw.zst\n`,
    ),
  ],
  ['/d/drop.img', image],
  ['/d/drop-norange.img', image],
  ['/f/Arch-cloudimg.qcow2', image],
  ['/f/Arch-cloudimg.qcow2.SHA256', Buffer.from(`${sha256(image)}  Arch-cloudimg.qcow2\n`)],
  ['/f/nosum.qcow2', image],
  ['/f/nosum.qcow2.sha512', Buffer.from(`${sha512(image)}  nosum.qcow2\n`)],
  ['/e/slow.img', image],
  ['/e/slower.img', image],
  ['/f/big.img', Buffer.alloc(2 * 1024 * 1024, 1)],
]);
const requests: string[] = [];
const dropped = new Set<string>();
let server: Server;
let base = '';

before(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path} ${req.headers.range ?? ''}`.trim());
    const body = files.get(path);
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    const ranges = path !== '/d/drop-norange.img';
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && ranges) {
      const start = Number(m[1]);
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'accept-ranges': 'bytes',
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, ...(ranges ? { 'accept-ranges': 'bytes' } : {}) });
    if (path.startsWith('/d/') && !dropped.has(path)) {
      // first request: send half the body, then drop the connection
      dropped.add(path);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    if (path === '/e/slow.img' || path === '/e/slower.img') {
      setTimeout(() => res.end(body), path === '/e/slow.img' ? 300 : 2500);
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => server.close());

function freshStore(): string {
  return mkdtempSync(join(work, 'store-'));
}

/** Files in the store folder other than content-addressed images, the index and lock files. */
function leftovers(root: string): string[] {
  try {
    return readdirSync(imagesDir(root)).filter((f) => f.startsWith('.tmp'));
  } catch {
    return [];
  }
}

test('declared sha256: downloaded, verified, promoted under its content hash, progress reported', async () => {
  const root = freshStore();
  const progress: number[] = [];
  const r = await downloadImage(`${base}/a/disk.qcow2`, imagesDir(root), {
    checksum: `sha256:${sha256(image)}`,
    onProgress: (p) => progress.push(p.received),
  });
  assert.deepEqual(readFileSync(r.path), image);
  assert.equal(r.sha256, `sha256:${sha256(image)}`);
  assert.ok(r.path.endsWith(sha256(image).slice(0, 32)));
  assert.equal(progress.at(-1), image.length);
  assert.deepEqual(leftovers(root), []);
});

test('declared sha512 is verified', async () => {
  const root = freshStore();
  const r = await downloadImage(`${base}/a/disk.qcow2`, imagesDir(root), { checksum: `sha512:${sha512(image)}` });
  assert.equal(r.verifiedAgainst, `sha512:${sha512(image)}`);
  assert.equal(r.sha256, `sha256:${sha256(image)}`);
});

test('checksum mismatch: ChecksumMismatch and nothing left in the store', async () => {
  const root = freshStore();
  await assert.rejects(
    downloadImage(`${base}/a/disk.qcow2`, imagesDir(root), { checksum: `sha256:${'ab'.repeat(32)}` }),
    (e: unknown) => e instanceof BackendError && e.reason === 'ChecksumMismatch',
  );
  assert.deepEqual(readdirSync(imagesDir(root)), []);
});

test('HTTP 404: DownloadFailed and nothing left in the store', async () => {
  const root = freshStore();
  await assert.rejects(
    downloadImage(`${base}/a/missing.qcow2`, imagesDir(root), { checksum: `sha256:${sha256(image)}` }),
    (e: unknown) => e instanceof BackendError && e.reason === 'DownloadFailed' && /404/.test(e.message),
  );
  assert.deepEqual(readdirSync(imagesDir(root)), []);
});

test('sidecar SHA256SUMS next to the URL is found and enforced', async () => {
  const root = freshStore();
  const ok = await downloadImage(`${base}/a/disk.qcow2`, imagesDir(root));
  assert.equal(ok.verifiedAgainst, `sha256:${sha256(image)}`);
  // other.qcow2 is listed in SHA256SUMS with a wrong digest: must be refused
  await assert.rejects(
    downloadImage(`${base}/a/other.qcow2`, imagesDir(root)),
    (e: unknown) => e instanceof BackendError && e.reason === 'ChecksumMismatch',
  );
  assert.deepEqual(leftovers(root), []);
});

test('sidecar <file>.sha512 is found', async () => {
  const root = freshStore();
  const r = await downloadImage(`${base}/b/disk.img`, imagesDir(root));
  assert.equal(r.verifiedAgainst, `sha512:${sha512(image)}`);
});

test('.xz and .zst downloads are verified as published, then stored decompressed', async () => {
  for (const ext of ['xz', 'zst']) {
    const root = freshStore();
    const r = await downloadImage(`${base}/c/disk.raw.${ext}`, imagesDir(root));
    assert.ok(r.verifiedAgainst, `${ext} verified against SHA256SUMS`);
    assert.deepEqual(readFileSync(r.path), image, `${ext} decompressed`);
    assert.equal(r.sha256, `sha256:${sha256(image)}`);
    assert.deepEqual(leftovers(root), []);
  }
});

test('a connection dropped mid-way is retried with Range from where it stopped', async () => {
  const root = freshStore();
  const before = requests.length;
  const r = await downloadImage(`${base}/d/drop.img`, imagesDir(root), { checksum: `sha256:${sha256(image)}` });
  assert.deepEqual(readFileSync(r.path), image);
  const mine = requests.slice(before).filter((l) => l.includes('/d/drop.img') && !l.includes('.sha'));
  assert.equal(mine.length, 2);
  assert.match(mine[1], /bytes=\d+-$/);
});

test('a dropped connection without Range support is retried from scratch', async () => {
  const root = freshStore();
  const r = await downloadImage(`${base}/d/drop-norange.img`, imagesDir(root), { checksum: `sha256:${sha256(image)}` });
  assert.deepEqual(readFileSync(r.path), image);
});

test('abort: DownloadAborted and nothing left', async () => {
  const root = freshStore();
  const ac = new AbortController();
  const p = downloadImage(`${base}/e/slow.img`, imagesDir(root), { checksum: `sha256:${sha256(image)}`, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, (e: unknown) => e instanceof BackendError && e.reason === 'DownloadAborted');
  assert.deepEqual(leftovers(root), []);
});

test('two concurrent resolves of one URL make one HTTP request and share the stored image', async () => {
  const root = freshStore();
  const url = `${base}/e/slow.img`;
  const before = requests.length;
  const src = { kind: 'url', ref: url, format: null, checksum: `sha256:${sha256(image)}`, os: null } as const;
  const [a, b] = await Promise.all([resolveImage(root, src), resolveImage(root, src)]);
  assert.equal(requests.slice(before).filter((l) => l.startsWith('GET /e/slow.img')).length, 1);
  assert.equal(a.path, b.path);
  assert.equal(a.id, `sha256:${sha256(image)}`);
  assert.equal(a.format, 'qcow2');
  assert.equal(a.virtualSize, 16 * 1024 * 1024);
  // and a later resolve uses the store without any request
  const n = requests.length;
  await resolveImage(root, src);
  assert.equal(requests.length, n);
  assert.equal((await inspectImage(root, url))?.source, url);
});

test('catalog name: downloaded via its sidecar; an unreachable buildable image says to build it', async () => {
  const root = freshStore();
  const entry = (url: string): CatalogEntry => ({
    name: 'debian:12',
    aliases: [],
    url,
    checksum: null,
    checksumUrl: `${base}/a/SHA256SUMS`,
    format: 'qcow2',
    user: 'debian',
    os: 'debian',
    buildable: true,
  });
  const src = { kind: 'catalog', ref: 'debian:12', format: null, checksum: null, os: null } as const;
  const r = await resolveImage(root, src, { catalog: () => entry(`${base}/a/disk.qcow2`) });
  assert.equal(r.id, `sha256:${sha256(image)}`);

  const other = freshStore();
  await assert.rejects(
    resolveImage(other, src, { catalog: () => entry('http://127.0.0.1:1/debian-12.qcow2') }),
    (e: unknown) => e instanceof BackendError && e.reason === 'ImageUnavailable' && e.message.includes('tend image build debian:12'),
  );
  assert.deepEqual(leftovers(other), []);
});

test('temp files of a tend process that died mid-download are swept; a live one is kept', async () => {
  const root = freshStore();
  const dir = imagesDir(root);
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, '.tmp-download-4194000-deadbeef'), 'partial');
  writeFileSync(join(dir, `.tmp-download-${process.ppid}-cafe0001`), 'someone else, alive');
  await downloadImage(`${base}/a/disk.qcow2`, dir, { checksum: `sha256:${sha256(image)}` });
  assert.deepEqual(leftovers(root), [`.tmp-download-${process.ppid}-cafe0001`]);
});

test('two tend processes resolving one URL download it once (lock file in the store)', async () => {
  const root = freshStore();
  const url = `${base}/e/slower.img`;
  const before = requests.length;
  const mod = new URL('../../src/images/resolve.js', import.meta.url).href;
  const code = `import { resolveImage } from ${JSON.stringify(mod)};
const r = await resolveImage(${JSON.stringify(root)}, { kind: 'url', ref: ${JSON.stringify(url)}, format: null, checksum: ${JSON.stringify(`sha256:${sha256(image)}`)}, os: null });
process.stdout.write(r.path);`;
  const { execFile } = await import('node:child_process');
  const runOne = (): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], (err, stdout, stderr) =>
        err ? reject(new Error(stderr)) : resolve(stdout),
      );
    });
  const [a, b] = await Promise.all([runOne(), runOne()]);
  assert.equal(a, b);
  assert.equal(requests.slice(before).filter((l) => l.startsWith('GET /e/slower.img')).length, 1);
});

test('a disk that fills up during a download: a clear ImageWriteFailed naming the file, nothing promoted, no crash', async () => {
  // a 512 KiB tmpfs in a private mount namespace holds the store; the image is 2 MiB
  const dir = mkdtempSync(join(work, 'full-'));
  const child = fileURLToPath(new URL('../helpers/download-child.ts', import.meta.url));
  const script = `mount -t tmpfs -o size=512k tend-full "$1" && exec "$2" --import tsx "$3" "$1" "$4"`;
  // (not spawnSync: this process serves the download)
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn('unshare', ['-rm', 'sh', '-c', script, 'sh', dir, process.execPath, child, `${base}/f/big.img`]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
  assert.equal(r.status, 0, `the child must not crash:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /Unhandled 'error' event|\n\s+at /);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { reason?: string; message?: string; left?: string[] };
  assert.equal(out.reason, 'ImageWriteFailed', r.stdout);
  assert.match(
    out.message ?? '',
    /writing the download of http:\/\/127\.0\.0\.1:\d+\/f\/big\.img to \S+ failed: no space left on the device: free some space and run the command again \(ENOSPC\)/,
  );
  assert.deepEqual(
    (out.left ?? []).filter((f) => f.startsWith('.tmp') || f.startsWith('sha256')),
    [],
    'no temp file and nothing promoted',
  );
});

test("vms.yml checksum {type: sha256} without a value: verified against ov's <url>.SHA256 sidecar, and refused without one", async () => {
  const root = freshStore();
  const url = `${base}/f/Arch-cloudimg.qcow2`;
  const got = await resolveImage(root, { kind: 'url', ref: url, format: null, checksum: null, os: null, sidecar: 'sha256' });
  assert.equal(got.id, `sha256:${sha256(image)}`);
  assert.equal((await inspectImage(root, url))?.verifiedAgainst, `sha256:${sha256(image)}`);
  assert.ok(requests.includes('GET /f/Arch-cloudimg.qcow2.SHA256'));
  // only a sha512 sidecar: the sha256 the file asks for is not there, so nothing is downloaded unverified
  await assert.rejects(
    resolveImage(freshStore(), { kind: 'url', ref: `${base}/f/nosum.qcow2`, format: null, checksum: null, os: null, sidecar: 'sha256' }),
    (err: unknown) => err instanceof BackendError && err.reason === 'ChecksumUnavailable' && /nosum\.qcow2\.SHA256/.test(err.message),
  );
  assert.ok(!requests.includes('GET /f/nosum.qcow2'));
});
