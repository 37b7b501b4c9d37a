/**
 * The files tend's users bring (issue 11, "Done when"): every example, doc snippet and test
 * fixture of holos (zeroecco/holos) and vmctl (Toasterson/vm-manager), copied verbatim into
 * test/fixtures/upstream/ by scripts/upstream-corpus.py. Each one is validated and planned
 * in-process the way `tend validate` / `tend plan` run it; valid ones must mean what they mean in
 * their own tool (ports, firmware, sizes, ...: the manifest), invalid ones must be rejected at
 * the line the manifest names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { validateCommand } from '../../src/cli/commands/validate.js';
import { planCommand } from '../../src/cli/commands/plan.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';
import type { VmSpec } from '../../schemas/model.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { keygen } from '../helpers/sshd.js';

interface Fixture {
  id: string;
  tool: 'holos' | 'vmctl';
  file: string;
  source: { path: string; line?: number };
  expect: 'valid' | 'invalid';
  stubs?: string[];
  extraStubs?: string[];
  home?: boolean;
  rewrite?: Record<string, string>;
  /** valid: what each VM must mean (a partial VmSpec; provisionCount = number of provision steps) */
  vms?: Record<string, Record<string, unknown>>;
  volumes?: Record<string, { size: number }>;
  /** valid: a word the plan line of that VM must contain */
  planNotes?: Record<string, string>;
  /** invalid: text on the line the error must point at (in errorFile, default the project file) */
  errorAt?: string;
  errorFile?: string;
  occurrence?: number;
}

const corpus = resolve(import.meta.dirname, '../fixtures/upstream');
const manifest = JSON.parse(readFileSync(join(corpus, 'manifest.json'), 'utf8')) as { fixtures: Fixture[] };

let homeKeys: string | undefined;
async function prepare(f: Fixture): Promise<{ dir: string; file: string; env: NodeJS.ProcessEnv }> {
  const root = mkdtempSync(join(tmpdir(), 'tend-upstream-'));
  const dir = join(root, 'project', f.id.replace('/', '-'));
  const home = join(root, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  cpSync(join(corpus, f.id), dir, { recursive: true });
  const file = join(dir, f.file);
  if (f.rewrite) {
    let text = readFileSync(file, 'utf8');
    for (const [from, to] of Object.entries(f.rewrite)) text = text.split(from).join(to);
    writeFileSync(file, text);
  }
  for (const stub of [...(f.stubs ?? []), ...(f.extraStubs ?? [])]) {
    const p = stub.startsWith('~/') ? join(home, stub.slice(2)) : resolve(dir, stub);
    if (stub.endsWith('/')) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, '');
    }
  }
  if (f.home) {
    homeKeys ??= await (async () => {
      const d = mkdtempSync(join(tmpdir(), 'tend-upstream-key-'));
      await keygen(join(d, 'id_ed25519'));
      return d;
    })();
    cpSync(join(homeKeys, 'id_ed25519'), join(home, '.ssh', 'id_ed25519'));
    cpSync(join(homeKeys, 'id_ed25519.pub'), join(home, '.ssh', 'id_ed25519.pub'));
  }
  return { dir, file, env: { ...process.env, HOME: home, TEND_STATE_DIR: join(root, 'state') } };
}

/** the 1-based line of the n-th line containing `text` */
function lineOf(path: string, text: string, occurrence = 1): number {
  const lines = readFileSync(path, 'utf8').split('\n');
  let seen = 0;
  for (let i = 0; i < lines.length; i++) if (lines[i].includes(text) && ++seen === occurrence) return i + 1;
  throw new Error(`${path}: no line contains ${JSON.stringify(text)}`);
}

/** `actual` has every field of `expected` (objects partially, arrays element-wise) */
function assertMeans(actual: unknown, expected: unknown, where: string): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual !== null && typeof actual === 'object', `${where}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertMeans((actual as Record<string, unknown>)[k], v, `${where}.${k}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${where}: ${JSON.stringify(actual)}`);
    expected.forEach((e, i) => assertMeans(actual[i], e, `${where}[${i}]`));
  } else assert.deepEqual(actual, expected, where);
}

for (const f of manifest.fixtures) {
  const origin = `${f.tool}:${f.source.path}${f.source.line ? `:${f.source.line}` : ''}`;
  test(`${f.id} (${origin}) is ${f.expect}`, async () => {
    const { dir, file, env } = await prepare(f);
    const g = { file: [file], cwd: dir, env, backend: new MemoryBackend() };
    const v = await validateCommand(g);
    const errors = v.diagnostics.filter((d) => d.severity === 'error');
    if (f.expect === 'invalid') {
      assert.equal(v.ok, false, `${f.id} was accepted`);
      const errFile = join(dir, f.errorFile ?? f.file);
      const want = lineOf(errFile, f.errorAt ?? '', f.occurrence);
      assert.ok(
        errors.some((d) => d.file === errFile && d.line === want),
        `${f.id}: expected an error at ${f.errorFile ?? f.file}:${want}, got:\n${errors.map(formatDiagnostic).join('\n')}`,
      );
      return;
    }
    assert.deepEqual(errors.map(formatDiagnostic), [], `${f.id} was rejected`);
    const loaded = await import('../../src/cli/context.js').then((m) => m.loadFiles(g));
    const project = loaded.project;
    assert.ok(project);
    for (const [name, want] of Object.entries(f.vms ?? {})) {
      const spec: VmSpec | undefined = project.vms.find((x) => x.name === name);
      assert.ok(spec, `${f.id}: no VM ${name}; have ${project.vms.map((x) => x.name).join(', ')}`);
      const { provisionCount, ...rest } = want;
      if (provisionCount !== undefined) assert.equal(spec.provision.length, provisionCount, `${f.id} ${name}: provision steps`);
      assertMeans(spec, rest, `${f.id} ${name}`);
    }
    if (f.volumes) assert.deepEqual(project.volumes, f.volumes);
    const p = await planCommand(g);
    assert.deepEqual(p.entries.map((e) => e.vm).sort(), project.vms.map((x) => x.name).sort(), `${f.id}: plan covers every VM`);
    for (const [name, word] of Object.entries(f.planNotes ?? {})) {
      const entry = p.entries.find((e) => e.vm === name);
      assert.ok(entry, `${f.id}: no plan entry for ${name}`);
      assert.match([...entry.changed, ...entry.notes].join('; '), new RegExp(word), `${f.id} ${name}: plan says ${word}`);
    }
  });
}
