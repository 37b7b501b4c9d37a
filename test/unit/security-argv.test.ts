/**
 * Security: nothing from a project file can become a command-line option of a program tend
 * runs (issue 13 §1.2). Strings that reach an argv have a validated form (schemas/names.ts,
 * checked by the loaders at the value's position) or come after "--" / as the value of an option.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { sshArgv } from '../../src/cli/commands/ssh.js';
import { virtiofsdArgv } from '../../src/qemu/volumes.js';
import { loadCompose } from '../../src/load/compose.js';
import { loadKdl } from '../../src/load/kdl.js';

const hostile = '-oProxyCommand=touch /tmp/x';

test('ssh: the user is the value of -l and "--" ends the options before the host', () => {
  const argv = sshArgv({ host: '127.0.0.1', port: 2222, user: hostile, keys: ['/k'], pin: null, command: ['-x', 'true'] });
  const l = argv.indexOf('-l');
  const dd = argv.indexOf('--');
  assert.ok(l >= 0 && argv[l + 1] === hostile, argv.join(' '));
  assert.equal(argv[dd + 1], '127.0.0.1');
  assert.ok(dd > l);
  // the only elements that start with "-" before "--" are tend's own options
  for (const [i, a] of argv.slice(0, dd).entries())
    if (a.startsWith('-') && argv[i - 1] !== '-l') assert.ok(!a.includes('ProxyCommand'), a);
});

test('ssh: a hostile user given to the real ssh client runs nothing on the host', async () => {
  // openssh-client is one of tend's runtime packages (scripts/deps.sh): a missing one fails here
  const dir = mkdtempSync(join(tmpdir(), 'tend-sec-'));
  const marker = join(dir, 'pwned');
  const argv = sshArgv({ host: '127.0.0.1', port: 9, user: `-oProxyCommand=touch ${marker}`, keys: [], pin: null, command: ['true'] });
  await execa('ssh', ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2', ...argv], { reject: false, stdin: 'ignore', timeout: 10_000 });
  assert.deepEqual(readdirSync(dir), [], 'the user string became an ssh option');
});

test('virtiofsd (C): a comma in a host folder cannot add a FUSE option', () => {
  const argv = virtiofsdArgv({ tag: 't', source: '/srv/a,allow_other', readOnly: false, socket: '/run/x.vfs' }, false);
  assert.deepEqual(argv.slice(1, 3), ['-o', 'source=/srv/a\\,allow_other']);
  const rust = virtiofsdArgv({ tag: 't', source: '-/x', readOnly: false, socket: '/run/x.vfs' }, true);
  assert.ok(rust.includes('--shared-dir=-/x'));
});

test('loaders: option-like strings are positioned errors in both dialects', () => {
  const yaml = [
    'services:',
    '  web:',
    '    image: debian:12',
    '    ssh: { user: "-oProxyCommand=touch /tmp/x" }',
    '    vm: { machine: "-M", cpu_model: "-cpu" }',
    '    network: { mode: tap, bridge: "-x" }',
  ].join('\n');
  const y = loadCompose('/p/tend.yaml', yaml, { HOME: '/nonexistent' });
  const at = y.diagnostics.map((d) => `${d.line}:${d.column}`);
  assert.deepEqual(at, ['4:18', '5:20', '5:37', '6:35'], y.diagnostics.map((d) => d.message).join('\n'));
  const kdl = [
    'vm "web" {',
    '  image "debian:12"',
    '  machine "-M"',
    '  cpu-model "-cpu"',
    '  ssh { user "-oProxyCommand=x"; }',
    '  network "tap" { bridge "-x"; }',
    '  cloud-init { user "-r"; hostname "-h"; }',
    '}',
  ].join('\n');
  const k = loadKdl('/p/VMFile.kdl', kdl, { HOME: '/nonexistent' });
  assert.deepEqual(
    k.diagnostics.map((d) => `${d.line}:${d.column}`),
    ['3:11', '4:13', '5:14', '6:26', '7:21', '7:36'],
    k.diagnostics.map((d) => d.message).join('\n'),
  );
  assert.equal(k.vms.length, 0);
});
