/** Image files in the store are content-addressed: one file per distinct sha256. */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';

export function blobPath(imagesDir: string, sha256hex: string): string {
  return join(imagesDir, `sha256-${sha256hex.slice(0, 32)}`);
}

/** A temp name in the store folder: same filesystem, so promotion is one rename. */
export function tempPath(imagesDir: string, hint: string): string {
  return join(imagesDir, `.tmp-${hint}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove temp files left by tend processes that died mid-download or mid-import. */
export async function sweepTemps(imagesDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const f of await readdir(imagesDir).catch(() => [] as string[])) {
    const m = /^\.tmp-[a-z]+-(\d+)-[0-9a-f]+$/.exec(f);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      await rm(join(imagesDir, f), { force: true });
      removed.push(f);
    }
  }
  return removed;
}
