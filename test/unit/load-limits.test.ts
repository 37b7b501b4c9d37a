/**
 * Limits of project files and of the files they name (issue 13 §1.6, §1.7): special files are
 * refused at the value that names them, huge or deeply nested input fails fast with a position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { loadKdl } from '../../src/load/kdl.js';
import { loadCompose } from '../../src/load/compose.js';
import { loadProject } from '../../src/load/project.js';
import { MAX_DEPTH, MAX_REFERENCED_BYTES, MAX_VMS } from '../../src/load/limits.js';
import { stepHashes } from '../../src/provision/cache.js';

const dir = mkdtempSync(join(tmpdir(), 'tend-limits-'));
const fifo = join(dir, 'fifo');
await execa('mkfifo', [fifo]);
const env = { HOME: dir };

function timed<T>(fn: () => T, maxMs: number): T {
  const t0 = Date.now();
  const r = fn();
  assert.ok(Date.now() - t0 < maxMs, `took ${Date.now() - t0} ms`);
  return r;
}

test('special files: /dev/zero and a FIFO as ssh-key or user-data are positioned errors, read never', () => {
  const kdl = `vm "a" {\n  image "debian:12"\n  cloud-init {\n    ssh-key "/dev/zero"\n  }\n}\nvm "b" {\n  image "debian:12"\n  cloud-init { user-data "${fifo}"; }\n}\n`;
  const k = timed(() => loadKdl(join(dir, 'VMFile.kdl'), kdl, env), 2000);
  assert.deepEqual(
    k.diagnostics.map((d) => `${d.line}:${d.column} ${/not a regular file/.test(d.message)}`),
    ['4:13 true', '9:26 true'],
  );
  const yaml = `services:\n  a:\n    image: debian:12\n    cloud_init:\n      ssh_authorized_keys: [/dev/zero]\n  b:\n    image: debian:12\n    cloud_init:\n      user_data: ${fifo}\n`;
  const y = timed(() => loadCompose(join(dir, 'tend.yaml'), yaml, env), 2000);
  assert.ok(
    y.diagnostics.some((d) => d.line === 5 && d.column === 29 && /not a regular file/.test(d.message)),
    JSON.stringify(y.diagnostics),
  );
  assert.ok(
    y.diagnostics.some((d) => d.line === 9 && /not a regular file/.test(d.message)),
    JSON.stringify(y.diagnostics),
  );
});

test('a referenced file larger than the limit is refused at its value', () => {
  const big = join(dir, 'big.pub');
  writeFileSync(big, '');
  truncateSync(big, MAX_REFERENCED_BYTES + 1);
  const k = loadKdl(join(dir, 'VMFile.kdl'), `vm "a" {\n  image "debian:12"\n  cloud-init { ssh-key "${big}"; }\n}\n`, env);
  assert.match(k.diagnostics[0]?.message ?? '', /tend reads at most 16 MiB/);
  assert.equal(k.diagnostics[0].line, 3);
});

test('a project file that is a FIFO is refused at once', async () => {
  const r = await loadProject([fifo], { env });
  assert.equal(r.project, null);
  assert.match(r.diagnostics[0].message, /not a regular file/);
});

test('a 4 MiB KDL string fails fast at its line, with a short message', async () => {
  const f = join(dir, 'long', 'VMFile.kdl');
  mkdirSync(join(dir, 'long'));
  writeFileSync(f, `vm "a" {\n  image "debian:12"\n  machine "${'x'.repeat(4 * 1024 * 1024)}"\n}\n`);
  const t0 = Date.now();
  const r = await loadProject([f], { env });
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(r.diagnostics[0].line, 3);
  assert.match(r.diagnostics[0].message, /characters long/);
  assert.ok(r.diagnostics[0].message.length < 200);
});

test('deep nesting fails fast at the first level too deep (KDL and YAML)', () => {
  const k = timed(() => loadKdl('/p/VMFile.kdl', 'vm "a" ' + '{ a '.repeat(5000) + '}'.repeat(5000) + '\n', env), 3000);
  assert.match(k.diagnostics[0].message, new RegExp(`more than ${MAX_DEPTH} deep`));
  assert.equal(k.diagnostics[0].column, 8 + 4 * MAX_DEPTH);
  const y = timed(() => loadCompose('/p/tend.yaml', 'services: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n', env), 3000);
  assert.match(y.diagnostics[0].message, /nested/);
  assert.ok(y.diagnostics[0].column > 1);
  const y2 = loadCompose('/p/tend.yaml', 'services: ' + '['.repeat(40) + ']'.repeat(40) + '\n', env);
  assert.match(y2.diagnostics[0].message, new RegExp(`more than ${MAX_DEPTH} deep`));
});

test(`more than ${MAX_VMS} VMs fail fast at the services key`, () => {
  let s = 'services:\n';
  for (let i = 0; i < 20000; i++) s += `  s${i}:\n    image: debian:12\n`;
  const y = timed(() => loadCompose('/p/tend.yaml', s, env), 8000);
  assert.deepEqual(
    y.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`),
    ['1:1 the file declares 20000 VMs (services × replicas)'],
  );
});

test('an upload folder with a FIFO in it is an error, not a hang', () => {
  const up = join(dir, 'upload');
  mkdirSync(up);
  writeFileSync(join(up, 'a.txt'), 'a');
  assert.throws(
    () => stepHashes([{ kind: 'file', source: dir, destination: '/srv' }]),
    (e: Error & { reason?: string }) => e.reason === 'UploadNotAFile' && /fifo/.test(e.message),
  );
});
