/**
 * `npm run build`: regenerate the precompiled schema validators, then bundle the CLI with
 * esbuild into dist/src/cli/main.js (+ lazily loaded chunks). One bundle starts several times
 * faster than hundreds of ESM files; `npm run lint` type-checks the sources with tsc.
 */
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { generate, generateState, OUT, STATE_OUT } from './gen-validators.js';

const root = join(import.meta.dirname, '..');
writeFileSync(OUT, generate());
writeFileSync(STATE_OUT, generateState());
rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outdir: join(root, 'dist', 'src', 'cli'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ssh2 finds its optional native/wasm crypto next to its own files: load it from node_modules.
  external: ['ssh2', 'cpu-features'],
  // Bundled CommonJS dependencies call require(): give every chunk a real one.
  banner: {
    js: "import { createRequire as __tendCreateRequire } from 'node:module'; const require = __tendCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
