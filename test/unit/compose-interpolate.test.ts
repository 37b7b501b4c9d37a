/**
 * Compose's `${VAR}` interpolation (issue 14 §3): the grammar on strings, the `.env` file next to
 * the project file, and what a tend.yaml / holos.yaml gets from it, with positioned errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interpolate, escapeDollars } from '../../src/load/interpolate.js';
import { parseDotEnv } from '../../src/load/dotenv.js';
import { loadProject } from '../../src/load/project.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';

const vars: Record<string, string> = { A: 'a', EMPTY: '', N: '2' };
const lookup = (n: string): string | undefined => vars[n];

test('interpolation: every compose form', () => {
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['$A-${A}', 'a-a'],
    ['x${A}y$A.z', 'xaya.z'],
    ['${MISSING:-def}|${EMPTY:-def}|${A:-def}', 'def|def|a'],
    ['${MISSING-def}|${EMPTY-def}|${A-def}', 'def||a'],
    ['${MISSING:+alt}|${EMPTY:+alt}|${A:+alt}', '||alt'],
    ['${MISSING+alt}|${EMPTY+alt}|${A+alt}', '|alt|alt'],
    ['${A:?need A}', 'a'],
    ['${EMPTY?need}', ''],
    ['${MISSING:-${A}}', 'a'],
    ['${MISSING:-${ALSO_MISSING:-deep}}', 'deep'],
    ['${MISSING:-x $A y}', 'x a y'],
    ['$$A and $${A} and $$', '$A and ${A} and $'],
    ['cost: 5$ or $1 or $-', 'cost: 5$ or $1 or $-'],
    ['${N}', '2'],
  ];
  for (const [input, want] of cases) {
    const r = interpolate(input, lookup);
    assert.deepEqual(
      r.problems.filter((p) => p.severity === 'error'),
      [],
      input,
    );
    assert.equal(r.value, want, input);
  }
});

test('interpolation: an unset variable is "" with a warning at its $, unless its default is taken', () => {
  const r = interpolate('x ${NOPE} $ALSO', lookup);
  assert.equal(r.value, 'x  ');
  assert.deepEqual(
    r.problems.map((p) => [p.index, p.severity, p.expr]),
    [
      [2, 'warning', '${NOPE}'],
      [10, 'warning', '$ALSO'],
    ],
  );
  assert.match(r.problems[0].message, /variable NOPE is not set/);
  // a nested unset variable inside a default that is not used says nothing
  assert.deepEqual(interpolate('${A:-$NOPE}', lookup).problems, []);
});

test('interpolation: bad syntax and failed requirements are errors naming the expression', () => {
  const bad: [string, number, RegExp][] = [
    ['a ${} b', 2, /\$\{ must be followed by a variable name/],
    ['${1X}', 0, /must be followed by a variable name/],
    ['x ${A', 2, /never closed/],
    ['${A:-unclosed', 0, /never closed/],
    ['${A/foo/bar}', 0, /after \$\{A comes \}, :-, -, :\?, \?, :\+ or \+/],
    ['ok ${MISSING:?set it in .env}', 3, /required variable MISSING is not set: set it in \.env/],
    ['${EMPTY:?}', 0, /required variable EMPTY is empty$/],
    ['${MISSING?}', 0, /required variable MISSING is not set/],
  ];
  for (const [input, index, message] of bad) {
    const errors = interpolate(input, lookup).problems.filter((p) => p.severity === 'error');
    assert.equal(errors.length, 1, input);
    assert.equal(errors[0].index, index, input);
    assert.match(errors[0].message, message, input);
  }
});

test('escapeDollars makes any value read back unchanged', () => {
  const v = { a: 'echo $HOME ${X:-y} $$', b: ['$1'], n: 3 };
  const e = escapeDollars(v);
  assert.deepEqual({ a: interpolate(e.a, lookup).value, b: e.b.map((x) => interpolate(x, lookup).value), n: e.n }, v);
});

test('.env: compose rules (export, comments, quotes, escapes, interpolation), errors at their line', () => {
  const env = parseDotEnv(
    '/p/.env',
    [
      '# a comment',
      '',
      'export CPUS=2',
      'NAME = web # trailing comment',
      'HASH=a#b',
      "LITERAL='${CPUS} $$ # kept'",
      'DQ="line\\none ${CPUS}"',
      'REF=${CPUS}-$NAME',
      'SHELL_WINS=from-file',
    ].join('\n'),
    { SHELL_WINS: 'from-shell' },
  );
  assert.deepEqual(env.diagnostics, []);
  assert.deepEqual(Object.fromEntries(env.vars), {
    CPUS: '2',
    NAME: 'web',
    HASH: 'a#b',
    LITERAL: '${CPUS} $$ # kept',
    DQ: 'line\none 2',
    REF: '2-web',
    SHELL_WINS: 'from-file',
  });
  const bad = parseDotEnv('/p/.env', 'OK=1\nthis is not a pair\nQ="open\nR=${X:?need X}\n', {});
  assert.deepEqual(
    bad.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`),
    [
      '2:1 expected NAME=VALUE',
      '3:3 the double-quoted value of Q is not closed on this line',
      '4:3 required variable X is not set: need X',
    ],
  );
});

function project(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'tend-interp-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}

test('tend.yaml: values from the environment and .env (the environment wins), typed as if written', async () => {
  const d = project({
    'tend.yaml': [
      'name: ${PROJECT:-shop}',
      'services:',
      '  web:',
      '    image: ${IMAGE}',
      '    vm:',
      '      vcpu: ${CPUS}',
      '      memory_mb: ${MEM:-1024}',
      '    ports: ["${HOST_PORT}:80"]',
      '    cloud_init:',
      '      hostname: "${CPUS}"',
      '      runcmd: ["echo $$HOME > /tmp/home"]',
      '',
    ].join('\n'),
    '.env': 'IMAGE=debian:12\nCPUS=2\nHOST_PORT=8080\nMEM=9999\n',
  });
  const r = await loadProject([join(d, 'tend.yaml')], { env: { MEM: '2048' } });
  assert.equal(r.project?.name, 'shop', r.diagnostics.map(formatDiagnostic).join('\n'));
  const web = r.project?.vms[0];
  assert.equal(web?.cpus, 2);
  assert.equal(web?.memory, 2048);
  assert.equal(web?.image.ref, 'debian:12');
  assert.deepEqual(
    web?.ports.map((p) => [p.hostPort, p.guestPort]),
    [[8080, 80]],
  );
  assert.equal(web?.cloudInit?.hostname, '2');
  assert.deepEqual(web?.cloudInit?.runcmd, ['echo $HOME > /tmp/home']);
});

test('tend.yaml: a failed ${VAR:?} and bad syntax are errors at the $ (file:line:column); nothing loads', async () => {
  const d = project({
    'tend.yaml':
      'services:\n  web:\n    image: debian:12\n    vm:\n      vcpu: 1\n    ports: ["${PORT:?set PORT}:80"]\n    extra_args: ["-a", "x ${BAD"]\n',
  });
  const file = join(d, 'tend.yaml');
  const r = await loadProject([file], { env: {} });
  assert.equal(r.project, null);
  const shown = r.diagnostics.map(formatDiagnostic).join('\n');
  assert.ok(
    r.diagnostics.some(
      (x) => x.file === file && x.line === 6 && x.column === 14 && /required variable PORT is not set: set PORT/.test(x.message),
    ),
    shown,
  );
  assert.ok(
    r.diagnostics.some((x) => x.line === 7 && x.column === 27 && /never closed/.test(x.message)),
    shown,
  );
  // an unset variable is a warning there, and the file still loads
  const w = project({ 'tend.yaml': 'services:\n  web:\n    image: debian:12\n    provision:\n      - shell: echo $HOME\n' });
  const rw = await loadProject([join(w, 'tend.yaml')], { env: {} });
  assert.ok(rw.project, rw.diagnostics.map(formatDiagnostic).join('\n'));
  const warn = rw.diagnostics.find((x) => x.severity === 'warning');
  assert.equal(`${warn?.line}:${warn?.column}`, '5:21');
  assert.match(warn?.hint ?? '', /write \$\$ for a literal \$/);
});

test('a bad .env line is an error in the .env file', async () => {
  const d = project({ 'tend.yaml': 'services:\n  web:\n    image: ${IMG}\n', '.env': 'IMG=debian:12\n=oops\n' });
  const r = await loadProject([join(d, 'tend.yaml')], { env: {} });
  assert.equal(r.project, null);
  assert.deepEqual(
    r.diagnostics.map((x) => `${x.file}:${x.line}:${x.column}`),
    [`${join(d, '.env')}:2:1`],
  );
});

test('holos.yaml is read verbatim, as holos reads it: no interpolation, no .env', async () => {
  const d = project({
    'holos.yaml': 'services:\n  web:\n    image: debian:12\n    cloud_init:\n      runcmd: ["echo $HOME ${X:-y}"]\n',
    '.env': 'this line would be an error\n',
  });
  const r = await loadProject([join(d, 'holos.yaml')], { env: {} });
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.project?.vms[0].cloudInit?.runcmd, ['echo $HOME ${X:-y}']);
});
