/**
 * Every state file has one owner module that reads and writes it (design §6: named files, read
 * defensively through their schema). status.json and provision.json are read elsewhere only
 * through their owners (src/state/status.ts, src/provision/record.ts): no other module names the
 * file, its path or its validator, so a change of its form or of how damage is reported is made
 * in one place.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return n.endsWith('.ts') && !n.endsWith('.d.ts') ? [p] : [];
  });
}

const OWNED = [
  { key: 'status', file: 'status.json', validator: 'validateStatusRecord', owners: ['src/state/status.ts'] },
  { key: 'provision', file: 'provision.json', validator: 'validateProvisionRecord', owners: ['src/provision/record.ts'] },
];
/** where every state file's name and schema are listed (not readers) */
const REGISTRIES = ['src/state/paths.ts', 'src/state/state-schemas.ts'];

test('status.json and provision.json are read and written only by their owner modules', () => {
  const files = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'controllers'))];
  assert.ok(files.length > 100);
  const offenders: string[] = [];
  for (const path of files) {
    const rel = relative(ROOT, path);
    if (REGISTRIES.includes(rel)) continue;
    const text = readFileSync(path, 'utf8');
    for (const o of OWNED) {
      if (o.owners.includes(rel)) continue;
      if (text.includes(o.validator)) offenders.push(`${rel}: uses ${o.validator}`);
      if (new RegExp(`vmFile\\([^()]*['"]${o.key}['"]\\s*\\)`).test(text)) offenders.push(`${rel}: vmFile(..., '${o.key}')`);
      if (text.includes(`'${o.file}'`) || text.includes(`"${o.file}"`)) offenders.push(`${rel}: names ${o.file}`);
    }
  }
  assert.deepEqual(offenders, [], 'read these files through their owner module');
});
