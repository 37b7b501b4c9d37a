/**
 * `stop: save` (issue 15 §1) is a per-VM setting in every dialect, with the same canonical field;
 * a wrong word is an error at its position that names the choices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';

async function load(file: string, text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tend-stopmode-'));
  try {
    writeFileSync(join(dir, file), text);
    return await loadProject([join(dir, file)], { cwd: dir, env: { HOME: dir } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DIALECTS: [string, (word: string) => string][] = [
  ['tend.yaml', (w) => `name: p\nservices:\n  web:\n    image: debian:12\n    stop: ${w}\n`],
  ['holos.yaml', (w) => `name: p\nservices:\n  web:\n    image: debian:12\n    stop: ${w}\n`],
  ['VMFile.kdl', (w) => `vm "web" {\n  image "debian:12"\n  stop "${w}"\n}\n`],
  ['vms.yml', (w) => `vms:\n  web:\n    source: { kind: cloud_image, url: https://example.org/d.qcow2 }\n    stop: ${w}\n`],
];

for (const [file, text] of DIALECTS) {
  test(`${file}: stop save / poweroff / absent, and a wrong word`, async () => {
    for (const [word, want] of [
      ['save', 'save'],
      ['poweroff', 'poweroff'],
    ] as const) {
      const r = await load(file, text(word));
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === 'error'),
        [],
      );
      assert.equal(r.project?.vms[0]?.stopMode, want);
    }
    const plain = await load(file, text('save').replace(/\n\s+stop:? "?save"?\n/, '\n'));
    assert.equal(plain.project?.vms[0]?.stopMode, undefined);
    const bad = await load(file, text('hibernate'));
    const err = bad.diagnostics.find((d) => d.severity === 'error');
    assert.ok(err, 'an error');
    assert.match(`${err.message} ${err.hint ?? ''}`, /save/);
    assert.equal(err.line, { 'VMFile.kdl': 3, 'vms.yml': 4 }[file] ?? 5, `${err.file}:${err.line}:${err.column}`);
  });
}
