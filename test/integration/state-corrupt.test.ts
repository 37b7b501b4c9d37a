/**
 * Corrupted state files (issue 13 item 5 and the chaos suite's file half): every file tend writes
 * for a running VM and its project is, in turn, truncated, replaced by garbage, given values of
 * the wrong types, or deleted. Then `ps`, `plan` and `up` never crash (no stack trace, no
 * TypeError), name the damaged file, and `up` brings back the desired state: the one QEMU still
 * running (no duplicate), its helper still there, the file rebuilt or harmlessly absent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILES, PROJECT_FILES, vmFile } from '../../src/state/paths.js';
import type { TestSshd } from '../helpers/sshd.js';
import { ensureBuilt } from './cli-harness.js';
import { assertEndState, chaosProject, killAll, processesOf, run, startFakeGuest, type ChaosProject } from './chaos-harness.js';

let work: string;
let sshd: TestSshd;
let p: ChaosProject;

before(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tend-corrupt-'));
  sshd = await startFakeGuest(work);
  p = chaosProject(sshd, 1, { hostFolder: true });
  const r = run(['up'], p);
  assert.equal(r.code, 0, r.stderr);
  assertEndState(p, 'running', 'first up', 1);
});

after(async () => {
  if (p) killAll(p);
  await sshd?.dispose();
  await rm(work, { recursive: true, force: true });
});

/** Every value replaced by one of another type (objects recursively); non-JSON text becomes a JSON object. */
function wrongTypes(text: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return '{"unexpected": [1, 2, 3]}\n';
  }
  const flip = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.length ? x.map(flip) : { not: 'a list' };
    if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, flip(y)]));
    if (typeof x === 'string') return 12345;
    if (typeof x === 'number') return 'not a number';
    if (typeof x === 'boolean') return 'yes';
    return [null];
  };
  return JSON.stringify(flip(v));
}

const damages: Record<string, ((text: string) => string) | null> = {
  truncated: (t) => t.slice(0, Math.floor(t.length / 2)),
  garbage: () => '\u0000\u00ff\u00fe{{{ not what tend wrote \u0007\n',
  'wrong types': wrongTypes,
  missing: null,
};

const vmFiles: (keyof typeof FILES)[] = ['applied', 'ports', 'status', 'helpers', 'instanceId', 'pid', 'knownHosts', 'intent', 'provision'];

/** the files whose damage ps or plan report by path (the others are rebuilt silently: pid, helpers, known_hosts) */
const reported: (keyof typeof FILES)[] = ['applied', 'ports', 'status', 'instanceId', 'intent', 'provision'];

function stateFiles(): { label: string; path: string }[] {
  return [
    ...vmFiles.map((k) => ({ label: `vms/web0/${FILES[k]}`, path: vmFile(p.projDir, 'web0', k) })),
    { label: PROJECT_FILES.events, path: join(p.projDir, PROJECT_FILES.events) },
  ];
}

function noCrash(r: { code: number | null; stdout: string; stderr: string }, what: string): void {
  assert.doesNotMatch(
    r.stderr,
    /TypeError|ReferenceError|RangeError|SyntaxError|Unhandled|\n\s+at \S+ \(/,
    `${what}: crashed:\n${r.stderr}`,
  );
}

describe('a damaged state file is reported and rebuilt, never a crash', () => {
  for (const [how, damage] of Object.entries(damages)) {
    test(how, { timeout: 240_000 }, () => {
      const damaged: string[] = [];
      for (const f of stateFiles()) {
        const ctx = `${f.label} ${how}`;
        // intent.json and provision.json exist only at times: write a valid one first so there is something to damage
        if (f.label.endsWith(FILES.intent)) writeFileSync(f.path, '{"intent": null}\n');
        if (f.label.endsWith(FILES.provision) && !existsSync(f.path)) writeFileSync(f.path, '{"instanceId": "i-1", "steps": ["a"]}\n');
        const before = existsSync(f.path) ? readFileSync(f.path, 'utf8') : '';
        if (damage === null) rmSync(f.path, { force: true });
        else writeFileSync(f.path, damage(before));
        damaged.push(f.label);

        const ps = run(['ps', '--json'], p);
        noCrash(ps, `ps after ${ctx}`);
        assert.equal(ps.code, 0, `ps after ${ctx}: ${ps.stderr}`);
        const plan = run(['plan'], p);
        noCrash(plan, `plan after ${ctx}`);
        assert.equal(plan.code, 0, `plan after ${ctx}: ${plan.stderr}`);
        // (half an instance-id is still a well-formed one: nothing to report)
        const undetectable = how === 'truncated' && f.label.endsWith(FILES.instanceId);
        if (damage !== null && !undetectable && reported.some((k) => f.label.endsWith(FILES[k]))) {
          assert.ok(
            (ps.stderr + plan.stdout + plan.stderr).includes(f.path),
            `${ctx}: neither ps nor plan names the damaged file:\n${ps.stderr}${plan.stdout}${plan.stderr}`,
          );
        }
      }
      // every file damaged at once: up repairs what it needs and leaves the one VM running
      const up = run(['up'], p);
      noCrash(up, `up after ${damaged.join(', ')} ${how}`);
      assert.equal(up.code, 0, `up after ${how}: ${up.stderr}`);
      assertEndState(p, 'running', `after ${how} and up`, 1);
      assert.equal(processesOf(p).qemu.get('web0')?.length, 1);
    });
  }
});
