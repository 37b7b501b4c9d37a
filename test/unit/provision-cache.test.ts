import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstStepToRun, stepHashes } from '../../src/provision/cache.js';
import type { ProvisionStep } from '../../schemas/model.js';

const files: Record<string, string> = { '/s/a.sh': 'echo a', '/s/conf': 'x=1' };
const content = (s: ProvisionStep) =>
  Buffer.from(s.kind === 'shell' ? ('script' in s ? files[s.script] : s.inline.join('\n')) : files[s.source]);
const sh = (cmd: string): ProvisionStep => ({ kind: 'shell', inline: [cmd] });
const steps: ProvisionStep[] = [
  sh('one'),
  { kind: 'shell', script: '/s/a.sh' },
  { kind: 'file', source: '/s/conf', destination: '/etc/conf' },
  sh('four'),
];
const recorded = stepHashes(steps, content);

test('cache: nothing changed → nothing runs', () => {
  assert.equal(firstStepToRun(stepHashes(steps, content), recorded), 4);
});

test('cache: editing the third step re-runs the third and the fourth', () => {
  const edited = [...steps];
  edited[2] = { kind: 'file', source: '/s/conf', destination: '/etc/other' };
  assert.equal(firstStepToRun(stepHashes(edited, content), recorded), 2);
});

test('cache: editing the content of an uploaded file re-runs from that step', () => {
  files['/s/conf'] = 'x=2';
  try {
    assert.equal(firstStepToRun(stepHashes(steps, content), recorded), 2);
  } finally {
    files['/s/conf'] = 'x=1';
  }
});

test('cache: editing a script file re-runs from that step', () => {
  files['/s/a.sh'] = 'echo b';
  try {
    assert.equal(firstStepToRun(stepHashes(steps, content), recorded), 1);
  } finally {
    files['/s/a.sh'] = 'echo a';
  }
});

test('cache: inserting a step re-runs it and everything after', () => {
  const inserted = [steps[0], sh('new'), ...steps.slice(1)];
  assert.equal(firstStepToRun(stepHashes(inserted, content), recorded), 1);
});

test('cache: reordering steps re-runs from the first moved one', () => {
  const reordered = [steps[0], steps[2], steps[1], steps[3]];
  assert.equal(firstStepToRun(stepHashes(reordered, content), recorded), 1);
});

test('cache: a step identical to a recorded one but after a change still runs (chained identity)', () => {
  const changedFirst = [sh('ONE'), ...steps.slice(1)];
  const hashes = stepHashes(changedFirst, content);
  assert.equal(firstStepToRun(hashes, recorded), 0);
  assert.notEqual(hashes[3], recorded[3]);
});

test('cache: a failed step is not recorded, so it and the rest run next time', () => {
  const partial = recorded.slice(0, 2); // steps 1-2 succeeded, step 3 failed
  assert.equal(firstStepToRun(stepHashes(steps, content), partial), 2);
});

test('cache: a new disk (empty record) runs everything', () => {
  assert.equal(firstStepToRun(stepHashes(steps, content), []), 0);
});
