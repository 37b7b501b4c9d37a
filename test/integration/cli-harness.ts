/**
 * Runs the BUILT CLI (dist/src/cli/main.js) the way a user does: a temp project folder as cwd
 * and a temp TEND_STATE_DIR. `ensureBuilt` runs `npm run build` when dist is older than the
 * sources (once per test file; tsc still emits when other files have type errors, so a build
 * with errors elsewhere is reported but does not hide the CLI).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

export function ensureBuilt(): void {
  const src = Math.max(...['src', 'controllers', 'schemas'].map((d) => newestMtime(join(ROOT, d))));
  if (existsSync(CLI) && statSync(CLI).mtimeMs >= src) return;
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(CLI)) throw new Error(`npm run build did not produce ${CLI}:\n${r.stdout}\n${r.stderr}`);
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A temp project folder with these files and an empty temp state dir (removed at exit). */
export function project(files: Record<string, string>): { cwd: string; stateDir: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const stateDir = mkdtempSync(join(tmpdir(), 'tend-cli-state-'));
  made.push(cwd, stateDir);
  return { cwd, stateDir };
}

export function tend(args: string[], p: { cwd: string; stateDir: string }, extraEnv: NodeJS.ProcessEnv = {}): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, TEND_STATE_DIR: p.stateDir };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p.cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export const TWO_VMS = `name: demo
services:
  web:
    image: debian:12
    vm: { vcpu: 1, memory_mb: 512 }
    ports: ["8080:80"]
    depends_on: [db]
  db:
    image: debian:12
    vm: { vcpu: 2, memory_mb: 1024 }
`;
