import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { ensureKeypair, generateKeypair } from '../../src/ssh/keys.js';
import { FILES } from '../../src/state/paths.js';

test('ensureKeypair: ed25519 in OpenSSH format, 0600, accepted by ssh-keygen and ssh2', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'tend-keys-')), 'web');
  const kp = await ensureKeypair(dir);
  assert.equal(kp.privateKeyPath, join(dir, FILES.privateKey));
  assert.match(kp.publicKey, /^ssh-ed25519 AAAA\S+ tend@web$/);
  assert.equal(statSync(kp.privateKeyPath).mode & 0o777, 0o600);
  const priv = readFileSync(kp.privateKeyPath, 'utf8');
  assert.match(priv, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  // OpenSSH derives the same public key from the private key
  const derived = execFileSync('ssh-keygen', ['-y', '-f', kp.privateKeyPath], { encoding: 'utf8' }).trim();
  assert.equal(derived.split(' ').slice(0, 2).join(' '), kp.publicKey.split(' ').slice(0, 2).join(' '));
  // ssh2 parses it and can sign with it
  const key = ssh2.utils.parseKey(priv);
  assert.ok(!(key instanceof Error) && !Array.isArray(key));
  if (!(key instanceof Error) && !Array.isArray(key)) {
    assert.equal(key.type, 'ssh-ed25519');
    const data = Buffer.from('hello');
    assert.ok(key.verify(data, key.sign(data)));
  }
  assert.equal(readFileSync(join(dir, FILES.publicKey), 'utf8').trim(), kp.publicKey);
});

test('existing keys are reused; a lost public key is derived again from the private key', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'tend-keys-')), 'db');
  const first = await ensureKeypair(dir);
  const priv = readFileSync(first.privateKeyPath, 'utf8');
  const again = await ensureKeypair(dir);
  assert.equal(again.publicKey, first.publicKey);
  assert.equal(readFileSync(again.privateKeyPath, 'utf8'), priv);
  unlinkSync(join(dir, FILES.publicKey));
  const rebuilt = await ensureKeypair(dir);
  assert.equal(rebuilt.publicKey, first.publicKey);
  assert.equal(readFileSync(rebuilt.privateKeyPath, 'utf8'), priv);
});

test('generated pairs always parse again (ssh2 drops a leading zero byte in ~1/256 of them)', () => {
  for (let i = 0; i < 2000; i++) {
    const pair = generateKeypair('t');
    assert.ok(!(ssh2.utils.parseKey(pair.private) instanceof Error), `private key ${i} parses`);
    assert.ok(!(ssh2.utils.parseKey(pair.public) instanceof Error), `public key ${i} parses`);
  }
});
