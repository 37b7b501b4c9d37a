/**
 * project.json: the host-wide index of projects. Each project's state folder
 * (`<state>/projects/<name>-<hash>/`) gets a record of the project's name, directory and files
 * when a command first brings it up (session.ts, watch); `tend ls` lists every project folder
 * under the state root and reads these records, and `-p NAME` finds a project by its name. The
 * index is the folders themselves: when a project's state is gone, so is its entry (nothing to
 * prune), and a folder without a record (made by an older tend) is listed with its path unknown.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonSync, writeJsonAtomic } from './atomic.js';
import { PROJECT_FILES, projectsDir } from './paths.js';
import { validateProjectRecord } from './validators.generated.js';
export { projectRecordSchema } from './project-record-schema.js';

export interface ProjectRecord {
  name: string;
  /** the project's directory (its first file's) */
  dir: string;
  /** the project files it was last loaded from */
  files: string[];
  /** RFC 3339: when tend first recorded the project */
  createdAt: string;
}

export function projectRecordPath(projDir: string): string {
  return join(projDir, PROJECT_FILES.record);
}

/** The record of a project folder; missing or damaged: undefined (a later command rewrites it). */
export function readProjectRecord(projDir: string): ProjectRecord | undefined {
  try {
    return readJsonSync<ProjectRecord>(projectRecordPath(projDir), validateProjectRecord);
  } catch {
    return undefined;
  }
}

/** Write the record when it is missing or says something else (name, directory, files). */
export async function recordProject(
  projDir: string,
  p: { name: string; dir: string; files: readonly string[] },
  now = Date.now(),
): Promise<void> {
  const prev = readProjectRecord(projDir);
  if (prev && prev.name === p.name && prev.dir === p.dir && prev.files.join('\n') === p.files.join('\n')) return;
  const rec: ProjectRecord = { name: p.name, dir: p.dir, files: [...p.files], createdAt: prev?.createdAt ?? new Date(now).toISOString() };
  await writeJsonAtomic(projectRecordPath(projDir), rec);
}

export interface ProjectFolder {
  /** the state folder */
  projDir: string;
  /** the folder's name (`<project>-<hash>`) */
  folder: string;
  /** the project's name: the record's, else the folder name without its hash */
  name: string;
  record: ProjectRecord | undefined;
}

/** Every project folder under the state root, sorted by name then folder. */
export function listProjectFolders(root: string): ProjectFolder[] {
  let entries: string[];
  try {
    entries = readdirSync(projectsDir(root), { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch {
    return [];
  }
  return entries
    .map((folder) => {
      const projDir = join(projectsDir(root), folder);
      const record = readProjectRecord(projDir);
      return { projDir, folder, name: record?.name ?? folder.replace(/-[0-9a-f]{8}$/, ''), record };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.folder.localeCompare(b.folder));
}
