/**
 * The bad-file corpus: each file in test/fixtures/bad/kdl is a small VMFile.kdl with one
 * mistake, and its first line says where the error must be reported and what it must say:
 *   // expect 4:12 memory is in MiB
 * (line:column, then a piece of the message or of its hint).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKdl } from '../../src/load/kdl.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/bad/kdl');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.kdl'))
  .sort();
const EXPECT_RE = /^\/\/ expect (\d+):(\d+) (.+)$/;

test('the corpus has at least 35 bad files, each with an expectation on its first line', () => {
  assert.ok(files.length >= 35, `only ${files.length} files`);
  for (const f of files) assert.match(readFileSync(join(dir, f), 'utf8').split('\n')[0], EXPECT_RE, f);
});

for (const f of files) {
  test(`bad/kdl/${f}`, () => {
    const file = join(dir, f);
    const text = readFileSync(file, 'utf8');
    const m = EXPECT_RE.exec(text.split('\n')[0]);
    assert.ok(m, `${f}: first line must be "// expect LINE:COL text"`);
    const [line, column, needle] = [Number(m[1]), Number(m[2]), m[3].trim()];
    const r = loadKdl(file, text, { HOME: '/nonexistent-home' });
    const all = r.diagnostics.map(formatDiagnostic).join('\n');
    assert.ok(r.diagnostics.length > 0, `${f}: no diagnostic at all`);
    assert.equal(r.vms.length, 0, `${f}: an invalid file must not yield VMs`);
    const hit = r.diagnostics.find((d) => d.line === line && d.column === column && `${d.message} ${d.hint ?? ''}`.includes(needle));
    assert.ok(hit, `${f}: expected ${line}:${column} "${needle}", got:\n${all}`);
    for (const d of r.diagnostics) {
      assert.equal(d.file, file);
      assert.equal(d.severity, 'error');
      assert.ok(d.line >= 1 && d.column >= 1, `${f}: position ${d.line}:${d.column}`);
      assert.doesNotMatch(
        `${d.message}\n${d.hint ?? ''}`,
        /\n\s+at |Exception|undefined|NaN|\[object/,
        `${f}: internal detail leaked: ${formatDiagnostic(d)}`,
      );
    }
  });
}
