import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { formatDuration, formatMemory, parseDuration, table } from '../../src/cli/output.js';
import { UsageError } from '../../schemas/errors.js';
import { shellQuote } from '../../src/ssh/exec.js';
import { createLogger, formatHumanLine } from '../../src/log.js';

test('table aligns columns under their headers', () => {
  const t = table(
    ['VM', 'ACTION', 'NOTES'],
    [
      ['web', 'create', '-'],
      ['database', 'none', 'ok'],
    ],
  ).split('\n');
  assert.equal(t[0], 'VM         ACTION   NOTES');
  assert.equal(t[1], 'web        create   -');
  assert.equal(t[2], 'database   none     ok');
});

test('durations print like kubectl ages and parse the --lock-timeout forms', () => {
  assert.equal(formatDuration(45_000), '45s');
  assert.equal(formatDuration(3 * 60_000 + 5_000), '3m');
  assert.equal(formatDuration(2 * 3_600_000 + 5 * 60_000), '2h5m');
  assert.equal(formatDuration(3 * 86_400_000), '3d');
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('10'), 10_000);
  assert.throws(() => parseDuration('5 minutes'), UsageError);
  assert.throws(() => parseDuration(''), UsageError);
  assert.equal(formatMemory(512), '512MiB');
  assert.equal(formatMemory(2048), '2GiB');
  assert.equal(formatMemory(1536), '1.5GiB');
});

test('logger writes JSON lines off a TTY and short human lines on one', () => {
  const lines = (tty: boolean, json = false): string => {
    const s = new PassThrough();
    let out = '';
    s.on('data', (b: Buffer) => (out += b.toString()));
    const log = createLogger({ stream: s, tty, json });
    log.info({ vm: 'web', reason: 'VmStarted' }, 'started (pid 42)');
    return out;
  };
  const json = JSON.parse(lines(false)) as Record<string, unknown>;
  assert.equal(json.msg, 'started (pid 42)');
  assert.equal(json.vm, 'web');
  assert.equal(json.level, 30);
  assert.match(lines(true), /^\d\d:\d\d:\d\d INFO {2}web: started \(pid 42\) reason=VmStarted\n$/);
  assert.doesNotThrow(() => JSON.parse(lines(true, true)), '--json wins over a TTY');
  assert.equal(formatHumanLine('plain text'), 'plain text\n');
});

test('exec quotes each argument for the guest shell', () => {
  assert.equal(['sh', '-c', 'df -h /', "it's"].map(shellQuote).join(' '), `sh -c 'df -h /' 'it'\\''s'`);
  assert.equal(shellQuote('/etc/hosts'), '/etc/hosts');
  assert.equal(shellQuote('$HOME'), "'$HOME'");
});
