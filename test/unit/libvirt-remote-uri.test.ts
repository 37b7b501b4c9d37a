/** Remote libvirt URIs, the HOST label, OpenSSH known_hosts matching, the jump's ProxyCommand (pure parts). */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { parseRemoteUri, remoteLabel, isSshTransport } from '../../src/libvirt/remote-uri.js';
import { hostLabel } from '../../src/backend/host-label.js';
import { checkKnownHost, hostMatches, knownHostName, parseKnownHosts } from '../../src/ssh/openssh-known-hosts.js';
import { jumpOf, jumpProxyCommand } from '../../src/ssh/jump.js';
import { sshArgv } from '../../src/cli/commands/ssh.js';

test('parseRemoteUri: local URIs are not remote; user, host, port and parameters of remote ones', () => {
  for (const u of ['qemu:///system', 'qemu:///session', 'qemu+unix:///system']) assert.equal(parseRemoteUri(u), null, u);
  const r = parseRemoteUri('qemu+ssh://alice@kvm1.example:2222/system?keyfile=/k/id&known_hosts=/k/kh&no_verify=0');
  assert.ok(r);
  assert.deepEqual(
    { t: r.transport, u: r.user, h: r.host, p: r.port, k: r.keyfile, kh: r.knownHosts, nv: r.noVerify, path: r.path },
    { t: 'ssh', u: 'alice', h: 'kvm1.example', p: 2222, k: '/k/id', kh: '/k/kh', nv: false, path: '/system' },
  );
  assert.equal(remoteLabel(r), 'alice@kvm1.example:2222');
  const plain = parseRemoteUri('qemu+ssh://kvm2/system');
  assert.ok(plain);
  assert.deepEqual([plain.user, plain.port, remoteLabel(plain)], [null, null, 'kvm2']);
  assert.equal(parseRemoteUri('qemu+ssh://h/system?no_verify=1')?.noVerify, true);
  assert.equal(isSshTransport(parseRemoteUri('qemu+libssh2://h/system')!), true);
  assert.equal(isSshTransport(parseRemoteUri('qemu+tls://h/system')!), false);
});

test('hostLabel: local for QEMU and local libvirt, user@host:port for a remote URI', () => {
  assert.equal(hostLabel(null), 'local');
  assert.equal(hostLabel({ backend: 'qemu' }), 'local');
  assert.equal(hostLabel({ backend: 'libvirt', uri: 'qemu:///system' }), 'local');
  assert.equal(hostLabel({ backend: 'libvirt', uri: 'qemu+ssh://root@10.0.0.7/system?keyfile=/x' }), '10.0.0.7');
});

test('jumpOf: defaults (user, port 22), a non-SSH transport is refused', () => {
  const j = jumpOf('qemu+ssh://kvm1/system', { USER: 'bob' });
  assert.deepEqual(j && { u: j.user, p: j.port, l: j.label }, { u: 'bob', p: 22, l: 'bob@kvm1' });
  assert.equal(jumpOf('qemu:///system'), null);
  assert.throws(() => jumpOf('qemu+tcp://kvm1/system'), /ssh transport/);
  assert.equal(
    jumpProxyCommand(jumpOf("qemu+ssh://al@kvm1/system?keyfile=/my keys/id's&no_verify=1")!),
    `ssh -W %h:%p -p 22 -l al -i '/my keys/id'\\''s' -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -- kvm1`,
  );
});

test('known_hosts: names, patterns, negation, hashed names, markers, verdicts', () => {
  assert.equal(knownHostName('h', 22), 'h');
  assert.equal(knownHostName('h', 2222), '[h]:2222');
  assert.equal(hostMatches(['*.example', '!bad.example'], 'good.example'), true);
  assert.equal(hostMatches(['*.example', '!bad.example'], 'bad.example'), false);
  assert.equal(hostMatches(['h?st'], 'HOST'), true);
  const salt = Buffer.from('0123456789abcdef0123');
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[kvm1]:2222').digest('base64')}`;
  const entries = parseKnownHosts(
    [
      '# comment',
      `${hashed} ssh-ed25519 KEYA`,
      'kvm2,10.0.0.2 ssh-ed25519 KEYB',
      'kvm2 ssh-rsa KEYR',
      '@revoked * ssh-ed25519 KEYBAD',
      '@cert-authority *.example ssh-ed25519 KEYCA',
      '',
    ].join('\n'),
  );
  assert.equal(checkKnownHost(entries, '[kvm1]:2222', 'ssh-ed25519', 'KEYA'), 'trusted');
  assert.equal(checkKnownHost(entries, 'kvm1', 'ssh-ed25519', 'KEYA'), 'unknown', 'the port is part of the name');
  assert.equal(checkKnownHost(entries, '10.0.0.2', 'ssh-ed25519', 'KEYB'), 'trusted');
  assert.equal(checkKnownHost(entries, 'kvm2', 'ssh-ed25519', 'OTHER'), 'changed');
  assert.equal(checkKnownHost(entries, 'kvm2', 'ecdsa-sha2-nistp256', 'OTHER'), 'unknown', 'no key of that type is known');
  assert.equal(checkKnownHost(entries, 'kvm2', 'ssh-ed25519', 'KEYBAD'), 'revoked');
  assert.equal(checkKnownHost(entries, 'a.example', 'ssh-ed25519', 'KEYCA'), 'unknown', 'host certificates are not trusted keys');
});

test('tend ssh through a remote host: ProxyCommand before the user and host', () => {
  const a = sshArgv({ host: '127.0.0.1', port: 40022, user: 'tend', keys: ['/k'], pin: null, proxyCommand: 'ssh -W %h:%p -- kvm1' });
  const i = a.indexOf('ProxyCommand=ssh -W %h:%p -- kvm1');
  assert.ok(i > 0 && a[i - 1] === '-o' && i < a.indexOf('-l'), a.join(' '));
  assert.deepEqual(a.slice(-2), ['--', '127.0.0.1']);
});

test('virsh killed by a signal is reported as such (not "exit undefined")', async () => {
  const { mkdtemp, writeFile: write, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createVirsh } = await import('../../src/libvirt/virsh.js');
  const dir = await mkdtemp(join(tmpdir(), 'tend-virsh-'));
  try {
    const bin = join(dir, 'virsh');
    await write(bin, '#!/bin/sh\nkill -SEGV $$\n', { mode: 0o755 });
    await assert.rejects(
      createVirsh({ uri: 'qemu+ssh://h/system', binary: bin }).run(['dumpxml', 'd']),
      /dumpxml d on qemu\+ssh:\/\/h\/system was killed by SIGSEGV/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
