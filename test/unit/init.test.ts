/** `tend init`: the starter file of each format validates, names the image, and is never written over. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCommand } from '../../src/cli/commands/init.js';
import { loadProject } from '../../src/load/project.js';
import { UsageError, ValidationError } from '../../schemas/errors.js';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'tend-init-'));
  dirs.push(d);
  return d;
};
process.on('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

for (const [format, file] of [
  ['yaml', 'tend.yaml'],
  ['kdl', 'VMFile.kdl'],
  ['vms', 'vms.yml'],
] as const) {
  test(`init --format ${format} writes ${file}, which validates with the chosen image`, async () => {
    const cwd = tmp();
    const r = await initCommand({ cwd, format, image: 'ubuntu:noble' });
    assert.equal(r.file, join(cwd, file));
    assert.equal(r.vm, 'ubuntu-noble');
    const loaded = await loadProject([r.file], { cwd });
    assert.deepEqual(
      loaded.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    assert.equal(loaded.project?.vms.length, 1);
    const vm = loaded.project!.vms[0];
    assert.equal(vm.name, 'ubuntu-noble');
    assert.match(JSON.stringify(vm.image), /noble/);
    assert.equal(vm.memory, 1024);
    if (format === 'yaml') {
      const first = readFileSync(r.file, 'utf8').split('\n')[0];
      const m = /^# yaml-language-server: \$schema=(.+)$/.exec(first);
      assert.ok(m, first);
      assert.ok(existsSync(m[1]), `the modeline names a schema that exists: ${m[1]}`);
    }
    // never overwrites
    const before = readFileSync(r.file, 'utf8');
    await assert.rejects(
      initCommand({ cwd, format, image: 'debian:12' }),
      (e: unknown) => e instanceof UsageError && /exists already/.test(e.message),
    );
    assert.equal(readFileSync(r.file, 'utf8'), before);
  });
}

test('init refuses a second project file next to another, and leaves nothing for a bad image', async () => {
  const cwd = tmp();
  writeFileSync(join(cwd, 'VMFile.kdl'), 'vm "a" {\n  image "debian:12"\n}\n');
  await assert.rejects(
    initCommand({ cwd }),
    (e: unknown) => e instanceof UsageError && /has a project file already \(VMFile\.kdl\)/.test(e.message),
  );
  assert.equal(existsSync(join(cwd, 'tend.yaml')), false);
  const empty = tmp();
  await assert.rejects(initCommand({ cwd: empty, image: 'debain:12' }), (e: unknown) => e instanceof ValidationError);
  assert.equal(existsSync(join(empty, 'tend.yaml')), false, 'the invalid file is removed');
  await assert.rejects(
    initCommand({ cwd: empty, format: 'toml' }),
    (e: unknown) => e instanceof UsageError && /--format toml/.test(e.message),
  );
});
