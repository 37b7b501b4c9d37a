/**
 * `npm run build` (and `npm pack`'s prepack): regenerate the precompiled schema validators, then
 * bundle the CLI with esbuild into dist/src/cli/main.js (+ lazily loaded chunks). One bundle starts
 * several times faster than hundreds of ESM files, and it holds every dependency, so the published
 * package needs none at run time; `npm run lint` type-checks the sources with tsc.
 */
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { generate, generateState, OUT, STATE_OUT } from './gen-validators.js';
import { BUNDLE_OPTIONS } from './bundle-options.js';

const root = join(import.meta.dirname, '..');
writeFileSync(OUT, generate());
writeFileSync(STATE_OUT, generateState());
rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  ...BUNDLE_OPTIONS,
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outdir: join(root, 'dist', 'src', 'cli'),
});
