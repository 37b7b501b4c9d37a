/**
 * `tend image build <name>`: build a guest image locally from distribution packages (no
 * download of a prebuilt image) and register it in the image store under its catalog name, so
 * `image: debian:12` works offline. Today: debian:12 (alias debian:bookworm), built by
 * scripts/build-debian-image.sh (debootstrap; needs root). The script caches its result outside
 * the repo (TEND_IMAGE_CACHE, default /var/cache/tend) keyed by a hash of the recipe.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { BackendError, UsageError } from '../../schemas/errors.js';
import { catalogEntry } from './catalog.js';
import { importImage, type StoredImage } from './store.js';

export interface BuildImageOptions {
  /** progress lines from the build (one line per call, no trailing newline) */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

/** Build recipes by canonical catalog name. */
const RECIPES: Record<string, string> = {
  'debian:12': 'build-debian-image.sh',
};

/** Names `buildImage` accepts (canonical names; catalog aliases also work). */
export function buildableImages(): string[] {
  return Object.keys(RECIPES);
}

/** Finds scripts/<file> from this module's location (works from src/ under tsx and from dist/). */
export function findBuildScript(file: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'scripts', file);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new BackendError('ImageBuildScriptMissing', `cannot find scripts/${file} next to tend's installation`);
}

/** Builds `name` (e.g. "debian:12") and registers it in the store under its canonical name. */
export async function buildImage(stateRoot: string, name: string, opts: BuildImageOptions = {}): Promise<StoredImage> {
  const canonical = catalogEntry(name)?.name ?? name;
  const recipe = RECIPES[canonical];
  if (!recipe) {
    throw new UsageError(
      `tend cannot build image "${name}" locally; buildable: ${buildableImages().join(', ')} (aliases such as debian:bookworm work too)`,
      'ImageNotBuildable',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new BackendError(
      'ImageBuildNeedsRoot',
      `building ${canonical} needs root (debootstrap, loop devices and mounts): run "sudo tend image build ${canonical}"`,
    );
  }
  opts.signal?.throwIfAborted();
  const script = findBuildScript(recipe);
  const sub = execa(script, [], {
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    cancelSignal: opts.signal,
    forceKillAfterDelay: 30_000,
    lines: false,
  });
  let pending = '';
  let tail: string[] = [];
  sub.stderr?.on('data', (b: Buffer) => {
    pending += b.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      tail = [...tail.slice(-19), line];
      opts.onProgress?.(line);
    }
  });
  const res = await sub;
  if (pending) {
    tail.push(pending);
    opts.onProgress?.(pending);
  }
  if (opts.signal?.aborted) throw opts.signal.reason;
  const path = String(res.stdout).trim().split('\n').pop() ?? '';
  if (res.exitCode !== 0 || !path || !existsSync(path)) {
    throw new BackendError(
      'ImageBuildFailed',
      `building ${canonical} with ${script} failed (exit ${res.exitCode ?? res.signal ?? 'unknown'}); last output:\n${tail.join('\n')}`,
    );
  }
  opts.onProgress?.(`registering ${path} as ${canonical}`);
  return importImage(stateRoot, canonical, path);
}
