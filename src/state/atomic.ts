/**
 * Atomic, owner-only state files: written to a temp file in the same folder, fsynced, renamed.
 * Reads are defensive: every JSON state file is parsed through its schema (the schemas live with
 * the module that owns the file; src/state/validators.generated.js compiles them). A missing file
 * is `undefined`; a corrupt one (not JSON, or JSON of the wrong shape) is reported through the
 * `onCorrupt` callback with its path and treated as missing, so the caller rebuilds from observation.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await ensureDir(dirname(path));
  const tmp = tempName(path);
  const fh = await open(tmp, 'w', FILE_MODE);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** A compiled schema (src/state/validators.generated.js). */
export interface StateValidator {
  (data: unknown): boolean;
  errors?: Array<{ instancePath: string; message?: string }> | null;
}

export interface CorruptFile {
  path: string;
  error: string;
}

/** Read a JSON state file through its schema. Missing → undefined. Corrupt → onCorrupt(...) and undefined. */
export async function readJson<T>(path: string, validate: StateValidator, onCorrupt?: (c: CorruptFile) => void): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseJson<T>(path, text, validate, onCorrupt);
}

export function readJsonSync<T>(path: string, validate: StateValidator, onCorrupt?: (c: CorruptFile) => void): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseJson<T>(path, text, validate, onCorrupt);
}

function parseJson<T>(path: string, text: string, validate: StateValidator, onCorrupt?: (c: CorruptFile) => void): T | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    onCorrupt?.({ path, error: `not JSON: ${(err as Error).message}` });
    return undefined;
  }
  if (!validate(value)) {
    onCorrupt?.({ path, error: `unexpected content: ${schemaErrors(validate)}` });
    return undefined;
  }
  return value as T;
}

/** ajv's errors in one line ("/ssh must be string"). */
export function schemaErrors(validate: StateValidator): string {
  const errs = validate.errors ?? [];
  return (
    errs
      .slice(0, 3)
      .map((e) => `${e.instancePath || '(top level)'} ${e.message ?? 'is invalid'}`)
      .join('; ') || 'does not match its schema'
  );
}

/** True when the path exists (any kind of file). */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
