/**
 * downloadImage in its own process, so a test can run it on a small tmpfs (in a mount namespace:
 * `unshare -rm`) and see what a full disk does. Usage: download-child.ts DIR URL [CHECKSUM];
 * prints {"ok": true} or {"reason": ..., "message": ...} and the files left in DIR.
 */
import { readdirSync } from 'node:fs';
import { TendError } from '../../schemas/errors.js';
import { downloadImage } from '../../src/images/download.js';

const [dir, url, checksum] = process.argv.slice(2) as [string, string, string | undefined];
let out: Record<string, unknown>;
try {
  await downloadImage(url, dir, { checksum: checksum ?? null });
  out = { ok: true };
} catch (err) {
  out = err instanceof TendError ? { reason: err.reason, message: err.message } : { unexpected: String(err) };
}
process.stdout.write(JSON.stringify({ ...out, left: readdirSync(dir) }) + '\n');
