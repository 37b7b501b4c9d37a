import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configValue, mergeSection, renderHostBlock, type SshHostEntry } from '../../src/ssh/config-file.js';

const entry: SshHostEntry = {
  vm: 'web',
  host: 'tend-demo-web',
  hostName: '127.0.0.1',
  port: 40022,
  user: 'debian',
  identityFiles: ['/state/My Projects/web/id_ed25519'],
  knownHostsFile: '/state/web/known_hosts',
  hostKeyAlias: 'tend-demo-web',
  hostKeyTypes: ['ssh-ed25519'],
  pinned: true,
};

test('a Host block: alias, address, user, key, pinned known_hosts with strict checking; paths with spaces quoted', () => {
  const b = renderHostBlock(entry);
  assert.equal(
    b,
    [
      'Host tend-demo-web',
      '  HostName 127.0.0.1',
      '  Port 40022',
      '  User debian',
      '  IdentityFile "/state/My Projects/web/id_ed25519"',
      '  IdentitiesOnly yes',
      '  UserKnownHostsFile /state/web/known_hosts',
      '  HostKeyAlias tend-demo-web',
      '  StrictHostKeyChecking yes',
      '  CheckHostIP no',
      '  HostKeyAlgorithms ssh-ed25519',
      '',
    ].join('\n'),
  );
  assert.match(renderHostBlock({ ...entry, pinned: false, hostKeyTypes: [] }), /# host key not pinned yet/);
  assert.equal(configValue('plain'), 'plain');
  assert.equal(configValue('a "b"'), '"a \\"b\\""');
});

test('mergeSection: appended once, replaced in place, everything around it kept, idempotent', () => {
  const one = mergeSection('', 'demo', 'Host a\n');
  assert.equal(one, '# >>> tend ssh-config demo >>>\nHost a\n# <<< tend ssh-config demo <<<\n');
  assert.equal(mergeSection(one, 'demo', 'Host a\n'), one);
  const around = `Host mine\n  Port 1\n\n${one}\nHost after\n`;
  const replaced = mergeSection(around, 'demo', 'Host b\n');
  assert.equal(replaced, `Host mine\n  Port 1\n\n# >>> tend ssh-config demo >>>\nHost b\n# <<< tend ssh-config demo <<<\n\nHost after\n`);
  assert.equal(mergeSection(replaced, 'demo', 'Host b\n'), replaced);
  const two = mergeSection(replaced, 'other', 'Host c\n');
  assert.ok(two.startsWith(replaced + '\n# >>> tend ssh-config other >>>\nHost c\n'));
  assert.equal(mergeSection(two, 'demo', 'Host b\n'), two, "another project's section is its own");
  assert.equal(
    mergeSection('Host x', 'demo', 'Host a'),
    'Host x\n\n# >>> tend ssh-config demo >>>\nHost a\n# <<< tend ssh-config demo <<<\n',
  );
});
