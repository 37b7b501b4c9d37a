/** Image files in the store are content-addressed: one file per distinct sha256. */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export function blobPath(imagesDir: string, sha256hex: string): string {
  return join(imagesDir, `sha256-${sha256hex.slice(0, 32)}`);
}

/** A temp name in the store folder: same filesystem, so promotion is one rename. */
export function tempPath(imagesDir: string, hint: string): string {
  return join(imagesDir, `.tmp-${hint}-${process.pid}-${randomBytes(4).toString('hex')}`);
}
