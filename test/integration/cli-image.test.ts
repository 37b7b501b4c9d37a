/**
 * `tend image pull | list | inspect | verify | rm` through the built CLI, against an HTTP server
 * on 127.0.0.1 that publishes an image with a SHA256SUMS file next to it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt, project } from './cli-harness.js';

let server: Server;
let base = '';
const files: Record<string, Buffer> = {};

before(async () => {
  ensureBuilt();
  const dir = project({}).cwd;
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'img.qcow2'), '64M']);
  files['/good/img.qcow2'] = readFileSync(join(dir, 'img.qcow2'));
  files['/good/SHA256SUMS'] = Buffer.from(`${createHash('sha256').update(files['/good/img.qcow2']).digest('hex')}  img.qcow2\n`);
  files['/bad/img.qcow2'] = files['/good/img.qcow2'];
  files['/bad/SHA256SUMS'] = Buffer.from(`${'0'.repeat(64)}  img.qcow2\n`);
  server = createServer((req, res) => {
    const body = files[req.url ?? ''];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
after(() => server.close());

/** The CLI in its own process, without blocking this one (the HTTP server lives here). */
function tend(args: string[], stateDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TEND_STATE_DIR: stateDir };
    delete env.NODE_OPTIONS;
    const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('pull, list, inspect, verify and rm an image by URL', async () => {
  const { stateDir } = project({});
  const url = `${base}/good/img.qcow2`;
  const pulled = await tend(['image', 'pull', url], stateDir);
  assert.equal(pulled.code, 0, pulled.stderr);

  const list = JSON.parse((await tend(['image', 'list', '--json'], stateDir)).stdout) as {
    images: { name: string; checksum: string; path: string }[];
  };
  assert.equal(list.images.length, 1);
  const [img] = list.images;
  assert.equal(img.checksum, `sha256:${createHash('sha256').update(files['/good/img.qcow2']).digest('hex')}`);

  const inspect = await tend(['image', 'inspect', img.name, '--json'], stateDir);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.equal((JSON.parse(inspect.stdout) as { image: { path: string } }).image.path, img.path);

  const verified = await tend(['image', 'verify', img.name, '--json'], stateDir);
  assert.equal(verified.code, 0, verified.stderr);
  assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);

  // A damaged image fails verification.
  const bytes = readFileSync(img.path);
  bytes[bytes.length - 1] ^= 0xff;
  writeFileSync(img.path, bytes);
  const broken = await tend(['image', 'verify', img.name], stateDir);
  assert.notEqual(broken.code, 0);
  assert.match(broken.stdout + broken.stderr, /mismatch|does not match|differs|FAILED/i);

  const rm = await tend(['image', 'rm', img.name], stateDir);
  assert.equal(rm.code, 0, rm.stderr);
  assert.deepEqual((JSON.parse((await tend(['image', 'list', '--json'], stateDir)).stdout) as { images: unknown[] }).images, []);
  assert.ok(!existsSync(img.path));
});

test('a pull whose checksum does not match fails and leaves nothing in the store', async () => {
  const { stateDir } = project({});
  const r = await tend(['image', 'pull', `${base}/bad/img.qcow2`], stateDir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /checksum|sha256/i);
  const images = join(stateDir, 'images');
  const left = existsSync(images)
    ? readdirSync(images, { recursive: true })
        .map(String)
        .filter((f) => !/\.json$|\.lock$/.test(f))
    : [];
  assert.deepEqual(left, [], 'no image file (temp or promoted) left behind');
});
