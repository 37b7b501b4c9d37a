import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generate, generateState, OUT, STATE_OUT } from '../../scripts/gen-validators.js';

test('the precompiled validators match the schemas (run npx tsx scripts/gen-validators.ts)', () => {
  assert.equal(readFileSync(OUT, 'utf8'), generate());
  assert.equal(readFileSync(STATE_OUT, 'utf8'), generateState());
});
