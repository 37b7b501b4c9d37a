/**
 * The field tables (src/load/fields.ts): limits come from the canonical schema, and the
 * editor-facing tend.schema.json states the same ranges for the keys it types as numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { limitsAt, outOfRange, Draft } from '../../src/load/fields.js';
import { SERVICE_FIELDS } from '../../src/load/compose-service.js';
import { VM_FIELDS } from '../../src/load/kdl-vm.js';
import { SSH_USER_PATTERN } from '../../schemas/names.js';

const root = resolve(import.meta.dirname, '../..');
type S = { properties?: Record<string, S>; $ref?: string; minimum?: number; maximum?: number; exclusiveMinimum?: number };
const fileSchema = JSON.parse(readFileSync(join(root, 'schemas/tend.schema.json'), 'utf8')) as S & { $defs: Record<string, S> };

function fileLimits(...path: string[]): S {
  let s: S = fileSchema.$defs.service;
  for (const k of path) {
    s = s.properties?.[k] as S;
    while (s.$ref) s = fileSchema.$defs[s.$ref.split('/').pop() as string];
  }
  return s;
}

test('fields: limits are read from the canonical schema, through lists and oneOf', () => {
  assert.deepEqual(limitsAt('/cpus'), { minimum: 1, maximum: 512 });
  assert.equal(limitsAt('/memory').minimum, 64);
  assert.deepEqual(limitsAt('/ssh/port'), { minimum: 1, maximum: 65535 });
  assert.equal(limitsAt('/healthcheck/interval').exclusiveMinimum, 0);
  assert.equal(limitsAt('/ports/3/guestPort').maximum, 65535);
  assert.deepEqual(limitsAt('/disposable'), {});
  assert.equal(limitsAt('/ssh/user').pattern, SSH_USER_PATTERN);
  assert.deepEqual(outOfRange(600, limitsAt('/cpus')), { rel: 'max', limit: 512 });
  assert.equal(outOfRange(2, limitsAt('/cpus')), undefined);
});

test('fields: tend.schema.json states the canonical ranges of the numbers it types', () => {
  const pairs: [string[], string][] = [
    [['vm', 'vcpu'], '/cpus'],
    [['vm', 'memory_mb'], '/memory'],
    [['ssh', 'port'], '/ssh/port'],
    [['healthcheck', 'retries'], '/healthcheck/retries'],
  ];
  for (const [path, pointer] of pairs) {
    const f = fileLimits(...path);
    const c = limitsAt(pointer);
    assert.equal(f.minimum, c.minimum, `${path.join('.')} minimum`);
    assert.equal(f.maximum, c.maximum, `${path.join('.')} maximum`);
  }
});

test('fields: every table row names a canonical field or reads values itself, and keys are unique', () => {
  for (const table of [VM_FIELDS, SERVICE_FIELDS]) {
    const keys = table.map((f) => f.key);
    assert.equal(new Set(keys).size, keys.length);
    for (const f of table) assert.match(f.pointer, /^(\/[a-zA-Z]+)*$/, f.key);
  }
});

test('fields: a draft records where each value and list item was written', () => {
  const d = new Draft();
  const at = (line: number) => ({ file: 'f', line, column: 1 });
  d.set('/ssh/user', 'u', at(1));
  d.push('/ports', { guestPort: 80 }, at(2));
  d.push('/ports', { guestPort: 81 }, at(3));
  assert.deepEqual(d.value, { ssh: { user: 'u' }, ports: [{ guestPort: 80 }, { guestPort: 81 }] });
  assert.deepEqual(Object.keys(d.locs), ['/ssh/user', '/ports/0', '/ports/1']);
});
