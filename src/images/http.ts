/**
 * Plain HTTP(S) GETs over node:http/https: follow redirects, stream a body into a file with
 * progress, and resume with Range after a dropped connection when the server allows it.
 */
import { createWriteStream } from 'node:fs';
import { stat, truncate } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { BackendError } from '../../schemas/errors.js';
import { proxyAgent, proxyFor } from './proxy.js';

export interface DownloadProgress {
  received: number;
  /** null when the server sent no length */
  total: number | null;
}

const MAX_REDIRECTS = 5;

/** Raised for a connection that broke mid-body (the only failure a retry may fix). */
class DroppedConnection extends Error {}

/**
 * A failure to write or read a local file (disk full, quota, I/O error, permissions) as a clear
 * BackendError naming the file and what to do; never retried (a retry would fail the same way).
 */
export function localFileError(err: NodeJS.ErrnoException, file: string, doing: string): BackendError {
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device: free some space and run the command again',
    EDQUOT: 'disk quota exceeded: free some space and run the command again',
    EFBIG: 'the file is larger than this system allows',
    EIO: 'an I/O error on the device',
    EROFS: 'the file system is read-only',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
  };
  const what = (err.code && why[err.code]) ?? err.message;
  return new BackendError('ImageWriteFailed', `${doing} ${file} failed: ${what}${err.code ? ` (${err.code})` : ''}`, { cause: err });
}

/** What to do when a host cannot be reached: offline, or a proxy to set (or the one set is wrong). */
export function unreachableNext(url: string): string {
  const proxy = proxyFor(url);
  return proxy
    ? `check the proxy ${proxy} (HTTPS_PROXY/HTTP_PROXY; hosts in NO_PROXY are reached directly) and the network`
    : 'check the network; behind a proxy, set HTTPS_PROXY (and NO_PROXY for hosts to reach directly)';
}

async function get(
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
  redirects = 0,
): Promise<{ res: http.IncomingMessage; url: string }> {
  const u = new URL(url);
  const proxy = u.protocol === 'https:' || u.protocol === 'http:' ? proxyFor(url) : null;
  const agent = proxy ? proxyAgent(u, proxy) : undefined;
  return new Promise((resolve, reject) => {
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!mod) return reject(new BackendError('DownloadFailed', `cannot download ${url}: unsupported protocol ${u.protocol}`));
    const req = mod.get(u, { headers: { 'user-agent': 'tend', ...headers }, signal, ...(agent ? { agent } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) return reject(new BackendError('DownloadFailed', `too many redirects for ${url}`));
        const next = new URL(res.headers.location, u);
        // credentials are for the host they were given to (a registry redirects blobs to storage)
        const keep =
          next.host === u.host ? headers : Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
        get(next.toString(), keep, signal, redirects + 1).then(resolve, reject);
        return;
      }
      resolve({ res, url });
    });
    req.on('error', (err) => reject(err));
  });
}

/** The body of a small text file (a checksum sidecar); null on 404/410. Other failures throw. */
export async function fetchText(url: string, signal?: AbortSignal): Promise<string | null> {
  const { res } = await get(url, {}, signal);
  const status = res.statusCode ?? 0;
  if (status === 404 || status === 410) {
    res.resume();
    return null;
  }
  if (status !== 200) {
    res.resume();
    throw new BackendError('DownloadFailed', `HTTP ${status} for ${url}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size > 8 * 1024 * 1024) throw new BackendError('DownloadFailed', `${url} is too large to be a checksum file`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Download `url` into `file` (created or replaced). On a dropped connection, retry `retries`
 * times: with `Range` from where it stopped when the server advertised byte ranges, else from
 * scratch. HTTP errors are not retried.
 */
export async function downloadTo(
  url: string,
  file: string,
  opts: { signal?: AbortSignal; onProgress?: (p: DownloadProgress) => void; retries?: number; headers?: Record<string, string> } = {},
): Promise<{ size: number }> {
  const retries = opts.retries ?? 1;
  let acceptRanges = false;
  let total: number | null = null;
  for (let attempt = 0; ; attempt++) {
    const have = attempt > 0 && acceptRanges ? await sizeOf(file) : 0;
    try {
      const r = await fetchOnce(
        url,
        opts.headers ?? {},
        file,
        have,
        opts.signal,
        (p) => opts.onProgress?.(p),
        (info) => {
          acceptRanges = info.acceptRanges;
          if (info.total !== null) total = info.total;
        },
        total,
      );
      return r;
    } catch (err) {
      const dropped = err instanceof DroppedConnection || isNetworkError(err);
      if (opts.signal?.aborted) throw new BackendError('DownloadAborted', `download of ${url} was cancelled`, { cause: err });
      if (err instanceof BackendError) throw err;
      if (!dropped || attempt >= retries) {
        const proxy = proxyFor(url);
        throw new BackendError(
          'DownloadFailed',
          `download of ${url}${proxy ? ` (via proxy ${proxy})` : ''} failed: ${(err as Error).message}`,
          {
            cause: err,
            ...(isNetworkError(err) ? { next: unreachableNext(url) } : {}),
          },
        );
      }
    }
  }
}

function isNetworkError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (
    typeof code === 'string' &&
    ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(
      code,
    )
  );
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function fetchOnce(
  url: string,
  headers: Record<string, string>,
  file: string,
  offset: number,
  signal: AbortSignal | undefined,
  onProgress: (p: DownloadProgress) => void,
  onInfo: (i: { acceptRanges: boolean; total: number | null }) => void,
  knownTotal: number | null,
): Promise<{ size: number }> {
  const { res } = await get(url, offset > 0 ? { ...headers, range: `bytes=${offset}-` } : headers, signal);
  const status = res.statusCode ?? 0;
  let start = 0;
  let total: number | null = null;
  const length = res.headers['content-length'] ? Number(res.headers['content-length']) : null;
  if (status === 206 && offset > 0) {
    const m = /bytes (\d+)-\d+\/(\d+|\*)/.exec(String(res.headers['content-range'] ?? ''));
    start = m ? Number(m[1]) : offset;
    total = m && m[2] !== '*' ? Number(m[2]) : knownTotal;
    if (start > offset) {
      res.resume();
      throw new DroppedConnection(`server resumed at ${start}, expected ${offset}`);
    }
  } else if (status === 200) {
    total = length;
  } else {
    res.resume();
    throw new BackendError('DownloadFailed', `HTTP ${status} ${res.statusMessage ?? ''}`.trim() + ` for ${url}`);
  }
  onInfo({ acceptRanges: String(res.headers['accept-ranges'] ?? '').includes('bytes'), total });
  if (start > 0) await truncate(file, start);
  const out = createWriteStream(file, { flags: start > 0 ? 'r+' : 'w', start, mode: 0o600 });
  // a write error (disk full, ...) may come at any time, also while the stream is being closed
  let writeError: BackendError | null = null;
  out.on('error', (e: NodeJS.ErrnoException) => {
    writeError ??= localFileError(e, file, `writing the download of ${url} to`);
  });
  let received = start;
  let lastEmit = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (e: Error): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(e);
      };
      out.on('error', () => fail(writeError as BackendError));
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (!out.write(chunk)) {
          res.pause();
          out.once('drain', () => res.resume());
        }
        const now = Date.now();
        if (now - lastEmit > 100) {
          lastEmit = now;
          onProgress({ received, total });
        }
      });
      res.on('aborted', () => fail(new DroppedConnection('connection dropped')));
      res.on('error', (e) => fail(e instanceof DroppedConnection ? e : new DroppedConnection(e.message)));
      res.on('end', () => {
        if (total !== null && received < total) fail(new DroppedConnection(`connection closed after ${received} of ${total} bytes`));
        else resolve();
      });
      res.on('close', () => {
        if (!res.complete) fail(new DroppedConnection(`connection closed after ${received} bytes`));
      });
    });
  } finally {
    await new Promise<void>((resolve) => {
      if (out.destroyed) return resolve();
      out.once('error', () => resolve());
      out.end(() => resolve());
    });
  }
  if (writeError) throw writeError;
  onProgress({ received, total: total ?? received });
  return { size: received };
}
