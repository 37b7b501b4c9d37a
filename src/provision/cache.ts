/**
 * Provisioning is cached like Dockerfile layers (design §5): a step's identity hashes its
 * definition, the content it runs or uploads, and the identity of the step before it. So a step is
 * skipped only when it and every earlier step match a recorded success; the first changed step and
 * everything after it run again.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ProvisionStep } from '../../schemas/model.js';
import { UsageError } from '../../schemas/errors.js';

/** The content a step runs or uploads, as bytes to hash (a folder upload hashes its tree). */
export function stepContent(step: ProvisionStep): Buffer {
  if (step.kind === 'shell') return 'script' in step ? readFileSync(step.script) : Buffer.from(step.inline.join('\n'));
  return treeContent(step.source);
}

/**
 * Only regular files and folders are read: a FIFO or a device in an upload would block or never
 * end, and a link back to a folder above would never end either (folders are entered once).
 */
function treeContent(path: string, seen = new Set<string>()): Buffer {
  const st = statSync(path);
  if (st.isFile()) return readFileSync(path);
  if (!st.isDirectory()) {
    throw new UsageError(`cannot upload ${path}: it is not a regular file or a folder (a device, a FIFO or a socket)`, 'UploadNotAFile');
  }
  const id = `${st.dev}:${st.ino}`;
  if (seen.has(id)) throw new UsageError(`cannot upload ${path}: a link leads back to a folder above it`, 'UploadLoop');
  seen.add(id);
  const parts: Buffer[] = [];
  for (const name of readdirSync(path).sort()) {
    parts.push(Buffer.from(`\0${name}\0`), treeContent(join(path, name), seen));
  }
  seen.delete(id);
  return Buffer.concat(parts);
}

/** Chained identities of the steps, in order. `content` is injectable for tests. */
export function stepHashes(steps: readonly ProvisionStep[], content: (s: ProvisionStep) => Buffer = stepContent): string[] {
  const out: string[] = [];
  let prev = '';
  for (const step of steps) {
    const h = createHash('sha256').update(prev).update('\0').update(JSON.stringify(step)).update('\0').update(content(step)).digest('hex');
    out.push(h);
    prev = h;
  }
  return out;
}

/** Index of the first step to run (steps.length when everything is cached). */
export function firstStepToRun(hashes: readonly string[], recorded: readonly string[]): number {
  let i = 0;
  while (i < hashes.length && recorded[i] === hashes[i]) i++;
  return i;
}
