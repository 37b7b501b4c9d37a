/**
 * The npm package (issue 14 §5): `npm pack` (its prepack builds dist/) makes a tarball with no
 * tests, bench, CI or keys in it, which `npm i -g --offline` installs into an empty prefix (the
 * bundle holds every dependency, so nothing is fetched); the installed `tend` runs from there with
 * only Node on PATH, reports the package's version and validates an example, and the JSON Schema
 * is reachable at its npm path `tend/schemas/tend.schema.json`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
let tmp = '';
let tarball = '';

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tend-pack-'));
  const out = execFileSync('npm', ['pack', '--pack-destination', tmp, '--json'], { cwd: repo, encoding: 'utf8' });
  const [packed] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
  tarball = join(tmp, packed.filename);
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds the bundle, the schema and docs; no tests, bench, CI, sources or keys', () => {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  for (const must of ['package.json', 'README.md', 'dist/src/cli/main.js', 'schemas/tend.schema.json', 'scripts/build-debian-image.sh'])
    assert.ok(files.includes(must), `${must} is missing from the package`);
  const bad = files.filter(
    (f) =>
      /^(test|bench|\.ci|src|controllers|node_modules)\//.test(f) ||
      /(^|\/)keys\//.test(f) ||
      /\.test\.[jt]s$/.test(f) ||
      /(^|\/)(id_[a-z0-9]+|[^/]*\.pem|demo)$/.test(f),
  );
  assert.deepEqual(bad, []);
  const pkg = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as {
    dependencies?: Record<string, string>;
  };
  assert.deepEqual(pkg.dependencies ?? {}, {}, 'the bundle holds every dependency: none is installed at run time');
});

test('npm i -g --offline installs it into an empty prefix; tend --version and tend validate run from there', () => {
  const prefix = join(tmp, 'prefix');
  execFileSync('npm', ['i', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], { encoding: 'utf8' });
  const bin = join(prefix, 'bin', 'tend');
  assert.ok(existsSync(bin), 'npm linked bin/tend');
  const installed = join(prefix, 'lib', 'node_modules', 'tend');
  assert.ok(!existsSync(join(installed, 'node_modules')), `nothing installed beside it: ${readdirSync(installed).join(' ')}`);
  // only Node on PATH, an empty HOME and state dir: nothing of this checkout can help
  const home = join(tmp, 'home');
  const env = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, TEND_STATE_DIR: join(home, 'state') };
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', env, cwd: tmp });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), version);
  const ok = spawnSync(bin, ['validate'], { encoding: 'utf8', env, cwd: join(installed, 'examples', 'compose') });
  assert.equal(ok.status, 0, ok.stderr + ok.stdout);
  const bad = spawnSync(bin, ['validate', '-f', join(installed, 'package.json')], { encoding: 'utf8', env, cwd: tmp });
  assert.equal(bad.status, 3, bad.stderr);
  assert.match(bad.stderr, /package\.json:\d+:\d+/);
  // the schema at its npm path, as editors and `$schema=` modelines find it
  const schema = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "console.log(import.meta.resolve('tend/schemas/tend.schema.json'))"],
    { encoding: 'utf8', env, cwd: join(prefix, 'lib') },
  );
  assert.equal(schema.status, 0, schema.stderr);
  assert.equal(schema.stdout.trim(), `file://${join(installed, 'schemas', 'tend.schema.json')}`);
});
