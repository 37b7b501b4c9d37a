import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findInSumsFile, parseChecksum } from '../../src/images/checksum.js';
import { compression, sidecarUrls } from '../../src/images/download.js';

const H256 = 'a'.repeat(64);
const H512 = 'b'.repeat(128);

test('parseChecksum accepts prefixed and bare digests of the right length only', () => {
  assert.deepEqual(parseChecksum(`sha256:${H256}`), { algo: 'sha256', hex: H256 });
  assert.deepEqual(parseChecksum(`SHA512:${H512.toUpperCase()}`), { algo: 'sha512', hex: H512 });
  assert.deepEqual(parseChecksum(H512), { algo: 'sha512', hex: H512 });
  assert.equal(parseChecksum(`sha256:${H512}`), null);
  assert.equal(parseChecksum('md5:d41d8cd98f00b204e9800998ecf8427e'), null);
  assert.equal(parseChecksum('sha256:xyz'), null);
});

test('GNU sums files (Debian SHA512SUMS, Ubuntu SHA256SUMS with *binary marker)', () => {
  const debian = `${'1'.repeat(128)}  debian-12-generic-amd64.qcow2\n${H512}  debian-12-genericcloud-amd64.qcow2\n`;
  assert.deepEqual(findInSumsFile(debian, 'debian-12-genericcloud-amd64.qcow2'), { algo: 'sha512', hex: H512 });
  const ubuntu = `${'2'.repeat(64)} *noble-server-cloudimg-arm64.img\n${H256} *noble-server-cloudimg-amd64.img\n`;
  assert.deepEqual(findInSumsFile(ubuntu, 'noble-server-cloudimg-amd64.img'), { algo: 'sha256', hex: H256 });
  assert.equal(findInSumsFile(ubuntu, 'jammy-server-cloudimg-amd64.img'), null);
});

test('BSD style (Fedora CHECKSUM) with comments', () => {
  const fedora = `# Fedora-Cloud-41-1.4-x86_64-CHECKSUM\n# Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491716608 bytes\nSHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = ${H256}\n`;
  assert.deepEqual(findInSumsFile(fedora, 'Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2'), { algo: 'sha256', hex: H256 });
});

test('a single bare digest (<file>.sha512) applies to the file; several bare digests do not', () => {
  assert.deepEqual(findInSumsFile(`${H512}\n`, 'anything.qcow2'), { algo: 'sha512', hex: H512 });
  assert.equal(findInSumsFile(`${H256}\n${H256}\n`, 'x'), null);
});

test('compression and sidecar locations follow the URL', () => {
  assert.equal(compression('https://h/a/disk.raw.xz'), 'xz');
  assert.equal(compression('https://h/a/disk.img.zst?x=1'), 'zst');
  assert.equal(compression('https://h/a/disk.qcow2'), null);
  assert.deepEqual(sidecarUrls('https://h/a/disk.qcow2'), [
    'https://h/a/disk.qcow2.sha256',
    'https://h/a/disk.qcow2.sha512',
    'https://h/a/SHA256SUMS',
    'https://h/a/SHA512SUMS',
  ]);
});
