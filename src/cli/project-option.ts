/**
 * `-p PROJECT`: the project a command works on, from anywhere. A path (a project folder, or a
 * project file) is used as if the command ran there; any other word is a project name, looked
 * up in the state root's index of projects (src/state/project-record.ts), then among the
 * `tend run` VMs (each is a project of its own).
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../../schemas/errors.js';
import { didYouMean } from '../../schemas/names.js';
import { discoverProjectFiles, projectFilesIn } from '../load/project.js';
import { listProjectFolders } from '../state/project-record.js';
import { RUN_FILE, runDir } from '../state/paths.js';

const looksLikePath = (v: string): boolean => v.includes('/') || v === '.' || v === '..' || v.startsWith('~');

export function filesOfProjectOption(value: string, cwd: string, root: string): string[] {
  const path = value.startsWith('~') ? join(homedir(), value.slice(1)) : resolve(cwd, value);
  if (looksLikePath(value) || existsSync(path)) {
    if (!existsSync(path)) throw new UsageError(`-p ${value}: no such folder or file (${path})`, 'ProjectNotFound');
    return statSync(path).isDirectory() ? discoverProjectFiles(path) : [path];
  }
  const folders = listProjectFolders(root).filter((f) => f.record);
  const mine = folders.filter((f) => f.record?.name === value);
  if (mine.length > 1) {
    throw new UsageError(
      `-p ${value}: ${mine.length} projects have this name (${mine.map((f) => f.record?.dir).join(', ')}): pass the folder instead`,
      'AmbiguousProject',
    );
  }
  if (mine.length === 1) {
    const rec = mine[0].record!;
    const files = rec.files.filter((f) => existsSync(f));
    if (files.length > 0) return files;
    const here = existsSync(rec.dir) ? projectFilesIn(rec.dir) : [];
    if (here.length > 0) return here;
    throw new UsageError(
      `-p ${value}: the project's files are gone (${rec.files.join(', ')}); its VMs are still listed by \`tend ls\``,
      'ProjectFilesGone',
    );
  }
  const run = join(runDir(root, value), RUN_FILE);
  if (existsSync(run)) return [run];
  const names = [...new Set(folders.map((f) => f.name))];
  const guess = didYouMean(value, names);
  throw new UsageError(
    `-p ${value}: no project of that name${guess ? `: did you mean "${guess}"?` : ''} (known: ${names.join(', ') || 'none'}; \`tend ls\` lists them, or pass a folder)`,
    'ProjectNotFound',
  );
}
