/**
 * `image-url "oci://registry/repo:tag"` (vmctl): a disk image stored as an OCI artifact. The
 * OCI distribution protocol, as registries speak it:
 *
 *   1. GET /v2/<repo>/manifests/<tag|digest>  (Accept: OCI/Docker manifest and index types)
 *   2. 401 + `WWW-Authenticate: Bearer realm=...,service=...,scope=...` → GET the realm for an
 *      anonymous (or GITHUB_TOKEN for ghcr.io, as vmctl does) pull token, then retry
 *   3. an index → the linux/amd64 manifest (else the only one)
 *   4. the first layer whose media type holds a disk image (vmctl's
 *      `application/vnd.cloudnebula.qcow2.layer.v1`, or `application/octet-stream`)
 *   5. GET /v2/<repo>/blobs/<digest>: the caller downloads it and verifies the digest
 *
 * Registries on localhost are spoken to over plain HTTP (as docker does), every other over HTTPS.
 */
import { BackendError } from '../../schemas/errors.js';

export interface OciRef {
  registry: string;
  repository: string;
  /** tag or "sha256:..." digest */
  reference: string;
}

/** Media types of a layer that holds a disk image (vmctl pushes the first one). */
export const DISK_LAYER_MEDIA_TYPES = ['application/vnd.cloudnebula.qcow2.layer.v1', 'application/octet-stream'] as const;

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** `oci://host[:port]/repo[/more][:tag|@sha256:hex]`, or a message saying why it is not one. */
export function parseOciRef(url: string): OciRef | string {
  if (!url.startsWith('oci://')) return `"${url}" is not an oci:// reference`;
  const rest = url.slice('oci://'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return `"${url}" names no repository: write oci://registry.example.com/name:tag`;
  const registry = rest.slice(0, slash);
  let path = rest.slice(slash + 1);
  let reference = 'latest';
  const at = path.indexOf('@');
  if (at >= 0) {
    reference = path.slice(at + 1);
    path = path.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(reference)) return `the digest in "${url}" is not sha256:<64 hex digits>`;
  } else {
    const colon = path.lastIndexOf(':');
    if (colon > path.lastIndexOf('/')) {
      reference = path.slice(colon + 1);
      path = path.slice(0, colon);
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(reference)) return `the tag "${reference}" in "${url}" is not a valid tag`;
    }
  }
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(path)) {
    return `the repository "${path}" in "${url}" is not valid (lower-case letters, digits, . _ - and /)`;
  }
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry))
    return `the registry "${registry}" in "${url}" is not a host name`;
  return { registry, repository: path, reference };
}

function baseUrl(ref: OciRef): string {
  const host = ref.registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const plain = host === 'localhost' || host === '127.0.0.1' || host === '::1';
  return `${plain ? 'http' : 'https'}://${ref.registry}`;
}

export interface OciBlob {
  /** the blob's URL */
  url: string;
  /** headers the blob GET needs (a bearer token) */
  headers: Record<string, string>;
  /** "sha256:<hex>" the blob must hash to */
  digest: string;
  mediaType: string;
  size: number | null;
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
}

/** Steps 1-4: find the disk image blob of an oci:// reference. */
export async function resolveOciBlob(url: string, opts: { signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<OciBlob> {
  const ref = parseOciRef(url);
  if (typeof ref === 'string') throw new BackendError('DownloadFailed', ref);
  const env = opts.env ?? process.env;
  const base = `${baseUrl(ref)}/v2/${ref.repository}`;
  const headers: Record<string, string> = {};

  const request = async (target: string, accept?: string): Promise<Response> => {
    const go = () => fetch(target, { headers: { ...headers, ...(accept ? { accept } : {}), 'user-agent': 'tend' }, signal: opts.signal });
    let res: Response;
    try {
      res = await go();
      if (res.status === 401 && !headers.authorization) {
        const token = await pullToken(res.headers.get('www-authenticate'), ref, env, opts.signal);
        if (token) {
          headers.authorization = `Bearer ${token}`;
          res = await go();
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) throw new BackendError('DownloadAborted', `pull of ${url} was cancelled`, { cause: err });
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new BackendError(
        'DownloadFailed',
        `cannot reach the OCI registry ${ref.registry} for ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
        { cause: err },
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      const what = res.status === 404 ? 'not found' : res.status === 401 || res.status === 403 ? 'access denied' : `HTTP ${res.status}`;
      throw new BackendError('DownloadFailed', `OCI registry ${ref.registry}: ${what} for ${url} (${target})`);
    }
    return res;
  };

  let manifest = (await (await request(`${base}/manifests/${ref.reference}`, MANIFEST_TYPES)).json()) as {
    mediaType?: string;
    manifests?: Descriptor[];
    layers?: Descriptor[];
  };
  if (Array.isArray(manifest.manifests)) {
    const list = manifest.manifests;
    const pick =
      list.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? (list.length === 1 ? list[0] : undefined);
    if (!pick?.digest) throw new BackendError('DownloadFailed', `${url} is an index without a linux/amd64 manifest`);
    manifest = (await (await request(`${base}/manifests/${pick.digest}`, MANIFEST_TYPES)).json()) as typeof manifest;
  }
  const layers = manifest.layers ?? [];
  const layer = layers.find((l) => l.mediaType && (DISK_LAYER_MEDIA_TYPES as readonly string[]).includes(l.mediaType));
  if (!layer?.digest || !layer.mediaType) {
    const seen = layers.map((l) => l.mediaType ?? '?').join(', ') || 'no layers';
    throw new BackendError(
      'DownloadFailed',
      `${url} holds no disk image layer (media types: ${seen}; expected one of ${DISK_LAYER_MEDIA_TYPES.join(', ')})`,
    );
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(layer.digest))
    throw new BackendError('DownloadFailed', `${url}: layer digest ${layer.digest} is not sha256`);
  return {
    url: `${base}/blobs/${layer.digest}`,
    headers: { ...headers },
    digest: layer.digest,
    mediaType: layer.mediaType,
    size: layer.size ?? null,
  };
}

/** An anonymous pull token from the realm a 401 names (GITHUB_TOKEN is used for ghcr.io, as vmctl does). */
async function pullToken(challenge: string | null, ref: OciRef, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<string | null> {
  if (!challenge || !/^bearer\s/i.test(challenge)) return null;
  const params: Record<string, string> = {};
  for (const m of challenge.slice(7).matchAll(/(\w+)="([^"]*)"/g)) params[m[1].toLowerCase()] = m[2];
  if (!params.realm) return null;
  const u = new URL(params.realm);
  if (params.service) u.searchParams.set('service', params.service);
  u.searchParams.set('scope', params.scope ?? `repository:${ref.repository}:pull`);
  const headers: Record<string, string> = { 'user-agent': 'tend' };
  if (ref.registry === 'ghcr.io' && env.GITHUB_TOKEN)
    headers.authorization = `Basic ${Buffer.from(`_token:${env.GITHUB_TOKEN}`).toString('base64')}`;
  const res = await fetch(u, { headers, signal });
  if (!res.ok) {
    await res.body?.cancel();
    throw new BackendError('DownloadFailed', `OCI registry ${ref.registry}: the token service ${u.host} answered HTTP ${res.status}`);
  }
  const body = (await res.json()) as { token?: string; access_token?: string };
  return body.token ?? body.access_token ?? null;
}
