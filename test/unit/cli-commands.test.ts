/**
 * The command functions called directly, with the in-memory backend/guest from
 * test/helpers/memory-backend.ts instead of QEMU: what a user sees from converge, stop, start,
 * ps, down and the lock, without booting anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../helpers/manual-clock.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { convergeCommand } from '../../src/cli/commands/converge.js';
import { stopCommand } from '../../src/cli/commands/stop.js';
import { startCommand } from '../../src/cli/commands/start.js';
import { psCommand, renderPs } from '../../src/cli/commands/ps.js';
import { downCommand } from '../../src/cli/commands/down.js';
import { planCommand, renderPlan } from '../../src/cli/commands/plan.js';
import { validateCommand } from '../../src/cli/commands/validate.js';
import { loadContext, type GlobalOptions } from '../../src/cli/context.js';
import { withProjectLock } from '../../src/state/lock.js';
import { readEvents } from '../../src/state/events.js';
import { LockError, UsageError, ValidationError } from '../../schemas/errors.js';

const YAML = `name: demo
services:
  web:
    image: debian:12
    vm: { vcpu: 1, memory_mb: 512 }
    depends_on: [db]
  db:
    image: debian:12
    vm: { vcpu: 2, memory_mb: 1024 }
`;

function setup(yaml = YAML): GlobalOptions & { mem: MemoryBackend } {
  const cwd = mkdtempSync(join(tmpdir(), 'tend-cmd-'));
  writeFileSync(join(cwd, 'tend.yaml'), yaml);
  const clock = new ManualClock(Date.parse('2026-01-01T10:00:00Z'));
  const mem = new MemoryBackend({ now: () => clock.now() });
  return { cwd, stateDir: mkdtempSync(join(tmpdir(), 'tend-cmd-state-')), backend: mem, guest: mem, clock, wait: false, mem };
}

test('converge creates every VM, reports them Ready, and records events in events.jsonl', async () => {
  const g = setup();
  const r = await convergeCommand(g);
  assert.equal(r.ok, true);
  assert.deepEqual(Object.keys(r.vms).sort(), ['db', 'web']);
  for (const s of Object.values(r.vms)) assert.equal(s.state, 'Ready');
  assert.ok(g.mem.seqOf('start', 'db') < g.mem.seqOf('start', 'web'), 'db (a dependency) starts before web');
  const events = await readEvents((await loadContext(g)).projDir);
  assert.ok(
    events.some((e) => e.reason === 'VmReady' && e.vm === 'web'),
    `events: ${events.map((e) => e.reason).join(',')}`,
  );
  const again = await convergeCommand(g);
  assert.equal(again.ok, true);
  assert.equal(g.mem.calls((c) => c.method === 'start').length, 2, 'a second converge starts nothing');
});

test('stop keeps a VM stopped until start or up clears the intent', async () => {
  const g = setup();
  await convergeCommand(g);
  const stopped = await stopCommand({ ...g, name: 'web' });
  assert.equal(stopped.vm, 'web');
  assert.equal(g.mem.vms.get('web')?.power, 'stopped');
  assert.equal(g.mem.vms.get('web')?.intent, 'stopped');
  const plan = await planCommand(g);
  assert.equal(plan.entries.find((e) => e.vm === 'web')?.action, 'none');
  assert.match(renderPlan(plan), /stopped by `tend stop`/);
  const ps = await psCommand(g);
  const web = ps.vms.find((v) => v.name === 'web');
  assert.equal(web?.state, 'stopped');
  assert.ok(web?.conditions.includes('StopIntent'));
  const started = await startCommand({ ...g, name: 'web' });
  assert.equal(started.ok, true);
  assert.equal(g.mem.vms.get('web')?.power, 'running');
  assert.equal(g.mem.vms.get('web')?.intent, null);
});

test('ps shows every VM with the documented columns; READY follows the last converge', async () => {
  const g = setup();
  const before = await psCommand(g);
  assert.deepEqual(
    before.vms.map((v) => [v.name, v.state, v.ready]),
    [
      ['web', 'not-created', false],
      ['db', 'not-created', false],
    ],
  );
  await convergeCommand(g);
  const after = await psCommand(g);
  assert.deepEqual(
    after.vms.map((v) => [v.name, v.state, v.ready]),
    [
      ['web', 'running', true],
      ['db', 'running', true],
    ],
  );
  const text = renderPs(after, Date.parse('2026-01-01T10:05:00Z'));
  assert.match(text.split('\n')[0], /^NAME\s+STATE\s+READY\s+ACCEL\s+CPUS\s+MEMORY\s+PORTS\s+SSH\s+AGE\s+CONDITIONS\s+HOST$/);
  assert.match(text, /\ndb\s+running\s+yes\s+\S+\s+2\s+1GiB\s.*\slocal$/m, 'HOST: local');
});

test('down stops every VM, dependents first; converge brings them back', async () => {
  const g = setup();
  await convergeCommand(g);
  const r = await downCommand(g);
  assert.equal(r.ok, true);
  assert.ok(g.mem.seqOf('stop', 'web') < g.mem.seqOf('stop', 'db'), 'web (depends on db) stops first');
  assert.equal(g.mem.vms.get('db')?.power, 'stopped');
  await convergeCommand(g);
  assert.equal(g.mem.vms.get('db')?.power, 'running');
});

test('a mutating command refuses to run while another tend holds the project lock (--no-wait)', async () => {
  const g = setup();
  const ctx = await loadContext(g);
  await withProjectLock(ctx.projDir, { command: 'tend watch', timeoutMs: 1000, wait: true }, async () => {
    await assert.rejects(convergeCommand(g), (e: unknown) => e instanceof LockError && /tend watch/.test(e.message));
    assert.deepEqual(g.mem.mutatingCalls(), [], 'nothing was touched');
    // read-only commands do not take the lock
    assert.equal((await planCommand(g)).entries.length, 2);
  });
});

test('unknown VM names and invalid files are refused before any backend call', async () => {
  const g = setup();
  await assert.rejects(
    convergeCommand({ ...g, names: ['wbe'] }),
    (e: unknown) => e instanceof UsageError && /did you mean "web"/.test(e.message),
  );
  await assert.rejects(stopCommand({ ...g, name: 'nosuch' }), UsageError);
  assert.deepEqual(g.mem.mutatingCalls(), []);
  const bad = setup('name: demo\nservices:\n  web:\n    image: debian:12\n    vm: { memory_mb: 2G }\n');
  const v = await validateCommand(bad);
  assert.equal(v.ok, false);
  assert.ok(v.diagnostics.some((d) => d.line === 5));
  await assert.rejects(convergeCommand(bad), ValidationError);
  assert.deepEqual(bad.mem.calls(), []);
});
