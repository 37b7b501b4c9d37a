/**
 * Every file in test/fixtures/bad/vms has one mistake and a first line
 * `# expect LINE:COL text`: loading it must report a diagnostic at exactly that position whose
 * message or hint contains the text, and must never throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadVmsYml } from '../../src/load/vms-yml.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';

const dir = resolve(import.meta.dirname, '../fixtures/bad/vms');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();
const env = { HOME: mkdtempSync(join(tmpdir(), 'tend-bad-vms-home-')) };

test('the bad-file corpus has at least as many files as the other dialects (68)', () => {
  assert.ok(files.length >= 68, `only ${files.length} files`);
});

for (const name of files) {
  test(`bad/vms/${name}`, () => {
    const file = join(dir, name);
    const text = readFileSync(file, 'utf8');
    const m = /^# expect (\d+):(\d+) (.+)$/.exec(text.split('\n')[0]);
    assert.ok(m, `${name}: first line must be "# expect LINE:COL text"`);
    const [line, column, want] = [Number(m[1]), Number(m[2]), m[3].trim()];
    const result = loadVmsYml(file, text, env);
    const all = result.diagnostics.map(formatDiagnostic).join('\n');
    assert.ok(result.diagnostics.length > 0, `${name}: no diagnostic at all`);
    for (const d of result.diagnostics) {
      assert.equal(d.file, file);
      assert.ok(d.line >= 1 && d.column >= 1, `${name}: position ${d.line}:${d.column}`);
    }
    const hit = result.diagnostics.find((d) => d.line === line && d.column === column && `${d.message}\n${d.hint ?? ''}`.includes(want));
    assert.ok(hit, `${name}: expected ${line}:${column} "${want}", got:\n${all}`);
    assert.equal(hit.severity, 'error');
    // one mistake, one error: no noise around it
    assert.equal(result.diagnostics.length, 1, `${name}: expected exactly one diagnostic, got:\n${all}`);
  });
}
