import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guestPath } from '../../src/cli/commands/cp.js';

test('tend cp: NAME:PATH is a guest path, anything else a host path', () => {
  assert.deepEqual(guestPath('web:/etc/hosts'), { vm: 'web', path: '/etc/hosts' });
  assert.deepEqual(guestPath('db-1:notes/a b.txt'), { vm: 'db-1', path: 'notes/a b.txt' });
  assert.deepEqual(guestPath('web:'), { vm: 'web', path: '.' }, "NAME: is the login user's home");
  assert.deepEqual(guestPath('web:/a:b'), { vm: 'web', path: '/a:b' });
  for (const host of ['./web:/x', '/abs/web:x', 'Web:/x', '-web:/x', 'site']) assert.equal(guestPath(host), null, host);
});
