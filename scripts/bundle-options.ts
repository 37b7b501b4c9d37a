/**
 * The esbuild options of tend's bundle, shared by scripts/build.ts and the test that runs ssh2
 * from a bundle built the same way (test/integration/bundled-ssh.test.ts).
 */
import type { BuildOptions } from 'esbuild';

export const BUNDLE_OPTIONS: BuildOptions = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Everything is bundled, ssh2 included, so the npm package has no runtime dependency (it installs
  // offline, with no install script). ssh2's optional native helpers stay out: its compiled
  // binding (*.node) and cpu-features are loaded in a try/catch, and ssh2 falls back to Node's own
  // crypto and its embedded WebAssembly poly1305 (docs/decisions.md).
  external: ['cpu-features', '*.node'],
  // Bundled CommonJS dependencies call require() and read __dirname (ssh2's agent does, when it is
  // loaded): give every chunk real ones.
  banner: {
    js: [
      "import { createRequire as __tendCreateRequire } from 'node:module';",
      "import { fileURLToPath as __tendFileURLToPath } from 'node:url';",
      'const require = __tendCreateRequire(import.meta.url);',
      'const __filename = __tendFileURLToPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  logLevel: 'warning',
};
