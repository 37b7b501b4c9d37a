/** The KDL files under test/fixtures, for tests that run every one of them. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Every `.kdl` file below `dir` (default: all fixtures), depth first. */
export function kdlFiles(dir: string = FIXTURES): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return kdlFiles(p);
    return n.endsWith('.kdl') ? [p] : [];
  });
}
