/** Checks `validate` makes across a project's VMs (issue 11 §4) and settings it infers (§2). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { planCommand, renderPlan } from '../../src/cli/commands/plan.js';
import { validateCommand } from '../../src/cli/commands/validate.js';
import { convergeCommand } from '../../src/cli/commands/converge.js';
import { renderConverge } from '../../src/cli/session.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';
import { MemoryBackend } from '../helpers/memory-backend.js';

function project(name: string, text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tend-checks-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return { dir, file };
}

const errors = async (name: string, text: string) => {
  const { file, dir } = project(name, text);
  const r = await loadProject([file], { cwd: dir, env: { HOME: dir } });
  return r.diagnostics.filter((d) => d.severity === 'error').map((d) => ({ line: d.line, message: d.message, hint: d.hint }));
};

test('validate resolves built-in image names: a typo gets "did you mean", an unknown name the list and how to add one', async () => {
  const typo = await errors('tend.yaml', 'services:\n  web:\n    image: debain:12\n');
  assert.equal(typo.length, 1);
  assert.equal(typo[0].line, 3);
  assert.equal(typo[0].message, '"debain:12" is not a built-in image');
  assert.equal(typo[0].hint, 'did you mean debian:12?');

  const kdl = await errors('VMFile.kdl', 'vm "a" {\n    image "fedora:rawhide"\n}\n');
  assert.equal(kdl.length, 1);
  assert.equal(kdl[0].line, 2);
  assert.match(kdl[0].hint ?? '', /built-in fedora images: .*fedora:44/);
  assert.match(kdl[0].hint ?? '', /URL \(with a checksum\) or the path of a local disk image/);

  const none = await errors(
    'tend.yaml',
    'services:\n  a: { image: arch }\n  b: { image: fedora }\n  c: { image: alpine:3.23 }\n  d: { image: rocky:9 }\n',
  );
  assert.deepEqual(none, []);
});

test('validate finds the same fixed host port declared twice (not only plan)', async () => {
  const e = await errors(
    'tend.yaml',
    'services:\n  a:\n    image: debian:12\n    ports: ["8080:80"]\n  b:\n    image: debian:12\n    ports:\n      - "8080:81"\n',
  );
  assert.equal(e.length, 1);
  assert.equal(e[0].line, 8);
  assert.match(e[0].message, /^b: host port 8080\/tcp is also used by a \(.*tend\.yaml:4:/);
  // different protocols or different bind addresses do not collide; a wildcard does
  assert.deepEqual(
    await errors(
      'tend.yaml',
      'services:\n  a: { image: debian:12, ports: ["8080:80"] }\n  b: { image: debian:12, ports: ["8080:80/udp", "127.0.0.2:8080:80"] }\n',
    ),
    [],
  );
  assert.equal(
    (
      await errors(
        'tend.yaml',
        'services:\n  a: { image: debian:12, ports: ["8080:80"] }\n  b: { image: debian:12, ports: ["0.0.0.0:8080:80"] }\n',
      )
    ).length,
    1,
  );
});

test('PCI devices turn UEFI on (as holos does) unless firmware is written, and plan says so', async () => {
  const { file, dir } = project(
    'holos.yaml',
    'name: gpu\nservices:\n  ml:\n    image: ubuntu:noble\n    devices:\n      - pci: "01:00.0"\n  plain:\n    image: ubuntu:noble\n',
  );
  const r = await loadProject([file], { cwd: dir, env: { HOME: dir } });
  assert.equal(r.project?.vms.find((v) => v.name === 'ml')?.firmware, 'uefi');
  assert.equal(r.project?.vms.find((v) => v.name === 'plain')?.firmware, 'bios');
  const p = await planCommand({
    file: [file],
    cwd: dir,
    env: { HOME: dir, TEND_STATE_DIR: join(dir, 'state') },
    backend: new MemoryBackend(),
  });
  assert.match(
    p.entries.find((e) => e.vm === 'ml')?.notes.join('; ') ?? '',
    /firmware uefi \(inferred: PCI devices are passed through, as holos does\)/,
  );
  assert.doesNotMatch(p.entries.find((e) => e.vm === 'plain')?.notes.join('; ') ?? '', /uefi/);

  const explicit = project(
    'tend.yaml',
    'services:\n  ml:\n    image: ubuntu:noble\n    firmware: bios\n    devices: [{ pci: "01:00.0" }]\n',
  );
  const r2 = await loadProject([explicit.file], { cwd: explicit.dir, env: { HOME: explicit.dir } });
  assert.equal(r2.project?.vms[0].firmware, 'bios');
  assert.deepEqual(r2.notes, {});
});

test('a catalog image that boots only with UEFI (Alpine 3.21+) gets UEFI', async () => {
  const { file, dir } = project('tend.yaml', 'services:\n  a:\n    image: alpine:3.23\n');
  const r = await loadProject([file], { cwd: dir, env: { HOME: dir } });
  assert.equal(r.project?.vms[0].firmware, 'uefi');
  assert.match(r.notes.a?.[0] ?? '', /alpine:3\.23 image boots only with UEFI/);
});

test('loader warnings reach validate, plan and up: a host port bound to every address', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-warn-'));
  writeFileSync(join(cwd, 'tend.yaml'), 'services:\n  web:\n    image: debian:12\n    ports:\n      - "0.0.0.0:8080:80"\n');
  const mem = new MemoryBackend();
  const g = { cwd, stateDir: mkdtempSync(join(tmpdir(), 'tend-warn-state-')), backend: mem, guest: mem, wait: false };
  const want =
    /tend\.yaml:5:9: warning: web: host port 8080\/tcp is bound to 0\.0\.0\.0, so other machines can reach it\n {2}hint: write "8080:80"/;
  const v = await validateCommand(g);
  assert.equal(v.ok, true);
  assert.match(v.diagnostics.map(formatDiagnostic).join('\n'), want);
  const p = await planCommand(g);
  assert.match(renderPlan(p), want);
  const up = await convergeCommand(g);
  assert.equal(up.ok, true);
  assert.match(renderConverge(up), want);
});
