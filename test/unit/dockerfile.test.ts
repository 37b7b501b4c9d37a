import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDockerfile } from '../../src/load/dockerfile.js';
import { stepHashes } from '../../src/provision/cache.js';

function dir(files: Record<string, string> = {}): string {
  const d = mkdtempSync(join(tmpdir(), 'tend-dockerfile-'));
  for (const [n, c] of Object.entries(files)) writeFileSync(join(d, n), c);
  return d;
}

test('FROM, RUN, COPY, ENV, WORKDIR, USER become provision steps in order', () => {
  const d = dir({ 'site.conf': 'server {}\n' });
  const text = [
    'FROM ubuntu:noble',
    'ENV DEBIAN_FRONTEND=noninteractive GREETING="hello world"',
    'RUN apt-get update && \\',
    '    apt-get install -y nginx',
    'WORKDIR /var/www/html',
    'RUN ["echo", "$PATH"]',
    'COPY site.conf /etc/nginx/conf.d/',
    'COPY site.conf relative.conf',
    'USER www-data',
    'RUN id -un',
  ].join('\n');
  const r = parseDockerfile(join(d, 'Dockerfile'), text);
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.from, { ref: 'ubuntu:noble', line: 1, column: 6 });
  assert.deepEqual(
    r.steps.map((s) => s.line),
    [3, 5, 6, 7, 8, 10],
  );
  const [run1, wd, run2, copy1, copy2, run3] = r.steps.map((s) => s.step);
  assert.deepEqual(run1, {
    kind: 'shell',
    inline: [
      '# Dockerfile:3 RUN apt-get update && apt-get install -y nginx',
      `sudo -n sh -c 'export DEBIAN_FRONTEND=noninteractive\nexport GREETING='\\''hello world'\\''\napt-get update &&     apt-get install -y nginx'`,
    ],
  });
  assert.deepEqual(wd, { kind: 'shell', inline: ['# Dockerfile:5 WORKDIR /var/www/html', `sudo -n sh -c 'mkdir -p /var/www/html'`] });
  // exec form: no shell expansion of $PATH
  assert.match((run2 as { inline: string[] }).inline[1], /cd \/var\/www\/html\necho '\\''\$PATH'\\''/);
  assert.deepEqual(copy1, { kind: 'file', source: join(d, 'site.conf'), destination: '/etc/nginx/conf.d/site.conf' });
  assert.deepEqual(copy2, { kind: 'file', source: join(d, 'site.conf'), destination: '/var/www/html/relative.conf' });
  assert.match((run3 as { inline: string[] }).inline[1], /^sudo -n -H -u www-data sh -c /);
});

test('a changed RUN changes its step and the ones after it, not the ones before (layer cache)', () => {
  const d = dir();
  const a = parseDockerfile(join(d, 'Dockerfile'), 'FROM debian:12\nRUN echo one\nRUN echo two\nRUN echo three\n');
  const b = parseDockerfile(join(d, 'Dockerfile'), 'FROM debian:12\nRUN echo one\nRUN echo TWO\nRUN echo three\n');
  const ha = stepHashes(a.steps.map((s) => s.step));
  const hb = stepHashes(b.steps.map((s) => s.step));
  assert.equal(ha[0], hb[0]);
  assert.notEqual(ha[1], hb[1]);
  assert.notEqual(ha[2], hb[2]);
  // an ENV above a RUN is part of that RUN's identity
  const c = parseDockerfile(join(d, 'Dockerfile'), 'FROM debian:12\nRUN echo one\nENV X=1\nRUN echo two\nRUN echo three\n');
  const hc = stepHashes(c.steps.map((s) => s.step));
  assert.equal(hc[0], ha[0]);
  assert.notEqual(hc[1], ha[1]);
});

test('instructions that cannot apply to a VM are errors at their line, with what to write instead', () => {
  const d = dir();
  mkdirSync(join(d, 'sub'));
  const text =
    'FROM debian:12\nEXPOSE 80\nCMD ["nginx"]\nCOPY missing.txt /opt/\nCOPY --from=build /a /b\nFROM alpine\nFROBNICATE x\nCOPY ../etc/passwd /x\n';
  const r = parseDockerfile(join(d, 'sub', 'Dockerfile'), text);
  const got = r.diagnostics.map((x) => [x.line, x.message]);
  assert.deepEqual(got, [
    [2, 'Dockerfile EXPOSE cannot apply to a VM'],
    [3, 'Dockerfile CMD cannot apply to a VM'],
    [4, `COPY source "missing.txt" does not exist (looked for ${join(d, 'sub', 'missing.txt')})`],
    [5, 'COPY --from is not supported for a VM'],
    [6, 'a multi-stage Dockerfile (a second FROM) cannot provision one VM'],
    [7, 'unknown Dockerfile instruction FROBNICATE'],
    [8, `COPY source "../etc/passwd" does not exist (looked for ${join(d, 'etc', 'passwd')})`],
  ]);
  assert.match(r.diagnostics[0].hint ?? '', /ports: \["8080:80"\]/);
});

test('COPY out of the Dockerfile folder is refused', () => {
  const d = dir({ 'secret.txt': 'x' });
  mkdirSync(join(d, 'ctx'));
  const r = parseDockerfile(join(d, 'ctx', 'Dockerfile'), 'FROM debian:12\nCOPY ../secret.txt /tmp/\n');
  assert.equal(r.diagnostics.length, 1);
  assert.match(r.diagnostics[0].message, /outside the Dockerfile folder/);
  assert.equal(r.diagnostics[0].line, 2);
});
