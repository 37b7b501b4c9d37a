/**
 * `image-url "oci://..."`: the OCI distribution pull flow against a registry-like HTTP server on
 * localhost (manifest, bearer-token challenge, index → linux/amd64, disk layer, blob redirected to
 * a storage host), verified against the layer digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadImage } from '../../src/images/download.js';
import { parseOciRef, resolveOciBlob } from '../../src/images/oci.js';
import { urlProblem } from '../../src/load/common.js';
import { rejectsWith } from '../helpers/rejects.js';
import { freePort } from '../helpers/sshd.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Registry {
  port: number;
  requests: { path: string; auth: string | undefined; host: string }[];
  close: () => Promise<void>;
}

async function listen(handler: http.RequestListener): Promise<http.Server> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}

/** A registry with repo "vm/disk": tag "v1" (an index) and blobs behind a token and a storage redirect. */
async function registry(disk: Buffer, opts: { layerType?: string; corrupt?: boolean } = {}): Promise<Registry> {
  const requests: Registry['requests'] = [];
  const storage = await listen((req, res) => {
    requests.push({ path: `storage${req.url}`, auth: req.headers.authorization, host: 'storage' });
    res.end(opts.corrupt ? Buffer.concat([disk, Buffer.from('x')]) : disk);
  });
  const storagePort = (storage.address() as AddressInfo).port;
  const layer = { mediaType: opts.layerType ?? 'application/vnd.cloudnebula.qcow2.layer.v1', digest: sha(disk), size: disk.length };
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha('other'), size: 5 }, layer],
  });
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha('arm'),
        size: 1,
        platform: { os: 'linux', architecture: 'arm64' },
      },
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
        platform: { os: 'linux', architecture: 'amd64' },
      },
    ],
  });
  const server = await listen((req, res) => {
    requests.push({ path: req.url ?? '', auth: req.headers.authorization, host: 'registry' });
    const port = (server.address() as AddressInfo).port;
    if (req.url?.startsWith('/token')) {
      const u = new URL(req.url, 'http://x');
      assert.equal(u.searchParams.get('scope'), 'repository:vm/disk:pull');
      return res.end(JSON.stringify({ token: 'T0K3N' }));
    }
    if (req.headers.authorization !== 'Bearer T0K3N') {
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:vm/disk:pull"`,
      });
      return res.end();
    }
    if (req.url === '/v2/vm/disk/manifests/v1') {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
      return res.end(index);
    }
    if (req.url === `/v2/vm/disk/manifests/${sha(manifest)}`) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      return res.end(manifest);
    }
    if (req.url === `/v2/vm/disk/blobs/${layer.digest}`) {
      res.writeHead(307, { location: `http://127.0.0.1:${storagePort}/blob/${layer.digest}` });
      return res.end();
    }
    res.writeHead(404);
    res.end();
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    requests,
    close: async () => {
      await new Promise((r) => server.close(r));
      await new Promise((r) => storage.close(r));
    },
  };
}

test('oci:// references parse as registry, repository and tag or digest; the loaders accept them', () => {
  assert.deepEqual(parseOciRef('oci://ghcr.io/cloudnebulaproject/ubuntu-rust:latest'), {
    registry: 'ghcr.io',
    repository: 'cloudnebulaproject/ubuntu-rust',
    reference: 'latest',
  });
  assert.deepEqual(parseOciRef('oci://localhost:5000/vm/disk'), { registry: 'localhost:5000', repository: 'vm/disk', reference: 'latest' });
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.equal((parseOciRef(`oci://r.example/x@${digest}`) as { reference: string }).reference, digest);
  assert.match(String(parseOciRef('oci://ghcr.io')), /names no repository/);
  assert.match(String(parseOciRef('oci://ghcr.io/Upper/Case:1')), /repository "Upper\/Case" .* is not valid/);
  assert.equal(urlProblem('oci://ghcr.io/cloudnebulaproject/ubuntu-rust:latest'), null);
  assert.match(
    urlProblem('ftp://x/y.qcow2') ?? '',
    /uses ftp: images are downloaded from http, https and file URLs, or pulled from oci:\/\/ registries/,
  );
});

test('pull: token challenge, index → linux/amd64 manifest, the disk layer, blob via storage redirect, digest verified', async () => {
  const disk = randomBytes(70_000);
  const reg = await registry(disk);
  try {
    const url = `oci://127.0.0.1:${reg.port}/vm/disk:v1`;
    const blob = await resolveOciBlob(url);
    assert.equal(blob.digest, sha(disk));
    assert.equal(blob.mediaType, 'application/vnd.cloudnebula.qcow2.layer.v1');
    const dir = mkdtempSync(join(tmpdir(), 'tend-oci-'));
    const messages: string[] = [];
    const r = await downloadImage(url, dir, { onMessage: (m) => messages.push(m) });
    assert.equal(r.sha256, sha(disk));
    assert.equal(r.verifiedAgainst, sha(disk));
    assert.deepEqual(readFileSync(r.path), disk);
    assert.ok(messages.some((m) => m.includes(`pulling ${sha(disk)}`)));
    // the bearer token goes to the registry, never to the storage host it redirects to
    const toStorage = reg.requests.filter((q) => q.host === 'storage');
    assert.equal(toStorage.length, 1);
    assert.equal(toStorage[0].auth, undefined);
    assert.ok(reg.requests.some((q) => q.path === '/v2/vm/disk/manifests/v1' && q.auth === 'Bearer T0K3N'));
  } finally {
    await reg.close();
  }
});

test('pull: a blob that does not match its digest is refused and leaves nothing behind', async () => {
  const reg = await registry(randomBytes(1000), { corrupt: true });
  try {
    const dir = mkdtempSync(join(tmpdir(), 'tend-oci-'));
    await assert.rejects(downloadImage(`oci://127.0.0.1:${reg.port}/vm/disk:v1`, dir), rejectsWith('ChecksumMismatch'));
    assert.deepEqual(
      readdirSync(dir).filter((f) => !f.startsWith('.')),
      [],
    );
  } finally {
    await reg.close();
  }
});

test('pull: an artifact without a disk layer, an unknown tag, and an unreachable registry say so', async () => {
  const reg = await registry(randomBytes(10), { layerType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
  try {
    await assert.rejects(
      resolveOciBlob(`oci://127.0.0.1:${reg.port}/vm/disk:v1`),
      rejectsWith(
        'DownloadFailed',
        /holds no disk image layer \(media types: application\/vnd\.oci\.image\.layer\.v1\.tar, application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/,
      ),
    );
    await assert.rejects(resolveOciBlob(`oci://127.0.0.1:${reg.port}/vm/disk:nope`), rejectsWith('DownloadFailed', /not found/));
  } finally {
    await reg.close();
  }
  const closed = await freePort();
  await assert.rejects(
    resolveOciBlob(`oci://127.0.0.1:${closed}/vm/disk:v1`),
    rejectsWith(
      'DownloadFailed',
      new RegExp(`cannot reach the OCI registry 127\\.0\\.0\\.1:${closed} for oci://127\\.0\\.0\\.1:${closed}/vm/disk:v1: ECONNREFUSED`),
    ),
  );
});
