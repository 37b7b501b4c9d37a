/**
 * How tend reads libvirt's word that a domain's QEMU ended: a lifecycle event line of `virsh
 * event --loop`, or the domain's state from `virsh domstate --reason` (the watch by name, which
 * may start after the event): the same kinds from both (a save or a guest poweroff is clean, a
 * destroy or a crash a failure), and nothing while the domain runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitKindOf, exitKindOfState, parseEventLine } from '../../src/libvirt/events.js';

test('event lines: a destroy and a crash are failures, a save and a guest shutdown clean, a start nothing', () => {
  const kind = (line: string) => {
    const e = parseEventLine(line);
    assert.ok(e, line);
    return exitKindOf(e);
  };
  assert.deepEqual(parseEventLine("event 'lifecycle' for domain 'tend-p-web': Stopped Destroyed"), {
    domain: 'tend-p-web',
    event: 'Stopped',
    detail: 'Destroyed',
  });
  assert.equal(kind("event 'lifecycle' for domain 'd': Stopped Destroyed"), 'failure');
  assert.equal(kind("event 'lifecycle' for domain 'd': Crashed Panicked"), 'failure');
  assert.equal(kind("event 'lifecycle' for domain 'd': Stopped Saved"), 'clean');
  assert.equal(kind("event 'lifecycle' for domain 'd': Stopped Shutdown"), 'clean');
  assert.equal(kind("event 'lifecycle' for domain 'd': Started Booted"), null);
  assert.equal(parseEventLine('events received: 3'), null);
});

test('domain states: the same kinds as the events; running, paused or in shutdown is no end; no domain is a failure', () => {
  assert.equal(exitKindOfState('shut off (destroyed)'), 'failure');
  assert.equal(exitKindOfState('shut off (saved)'), 'clean', 'a managed save is a clean end');
  assert.equal(exitKindOfState('shut off (shutdown)'), 'clean');
  assert.equal(exitKindOfState('shut off (migrated)'), 'clean');
  assert.equal(exitKindOfState('shut off (failed)'), 'failure');
  assert.equal(exitKindOfState('shut off'), 'failure', 'no reason: nothing says it was clean');
  assert.equal(exitKindOfState('crashed (panicked)'), 'failure');
  assert.equal(exitKindOfState('running (booted)'), null);
  assert.equal(exitKindOfState('paused (user)'), null);
  assert.equal(exitKindOfState('in shutdown (unknown)'), null);
  assert.equal(exitKindOfState(null), 'failure');
});
