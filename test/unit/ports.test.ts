import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePortSpec } from '../../src/load/ports.js';
import { parseVolumeSpec } from '../../src/load/volumes.js';

test('port specs in every accepted form', () => {
  const cases: [string, object][] = [
    ['80', { hostPort: null, guestPort: 80, protocol: 'tcp' }],
    ['8080:80', { hostPort: 8080, guestPort: 80, protocol: 'tcp' }],
    ['8080:80/udp', { hostPort: 8080, guestPort: 80, protocol: 'udp' }],
    ['53/UDP', { hostPort: null, guestPort: 53, protocol: 'udp' }],
    ['0.0.0.0:8080:80', { hostAddress: '0.0.0.0', hostPort: 8080, guestPort: 80, protocol: 'tcp' }],
    ['127.0.0.1::80', { hostAddress: '127.0.0.1', hostPort: null, guestPort: 80, protocol: 'tcp' }],
    ['[::1]:2222:22', { hostAddress: '::1', hostPort: 2222, guestPort: 22, protocol: 'tcp' }],
    ['65535:1', { hostPort: 65535, guestPort: 1, protocol: 'tcp' }],
    // holos: host port 0 = pick one; the 4-part bind:host:guestaddr:guest form
    ['0:80', { hostPort: null, guestPort: 80, protocol: 'tcp' }],
    ['0.0.0.0:8080:10.0.2.15:80', { hostAddress: '0.0.0.0', hostPort: 8080, guestPort: 80, protocol: 'tcp' }],
    ['127.0.0.1:0:10.0.2.15:22/tcp', { hostAddress: '127.0.0.1', hostPort: null, guestPort: 22, protocol: 'tcp' }],
  ];
  for (const [spec, want] of cases) {
    const r = parsePortSpec(spec);
    assert.equal(r.ok, true, spec);
    if (r.ok) assert.deepEqual(r.value, want, spec);
  }
});

test('bad port specs say what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['http', /not a number/],
    ['70000:80', /host port 70000 .* out of range/],
    ['8080:0', /guest port 0 .* out of range/],
    ['8080:80/sctp', /protocol "sctp"/],
    ['8000-8010:80', /ranges/],
    ['1.2.3:8080:80', /not an IPv4 address/],
    ['1:2:3:4:5', /too many/],
    ['0.0.0.0:8080:10.0.2.16:80', /guest address 10\.0\.2\.16 .* is not the VM's user-network address 10\.0\.2\.15/],
    ['1:2:3:4', /guest address 3/],
    [':80', /host port is empty/],
    ['8080:', /guest port is empty/],
    ['[::1:8080:80', /closing/],
  ];
  for (const [spec, re] of cases) {
    const r = parsePortSpec(spec);
    assert.equal(r.ok, false, spec);
    if (!r.ok) assert.match(r.message, re, spec);
  }
});

test('volume specs: named, host folders, modes', () => {
  assert.deepEqual(parseVolumeSpec('data:/var/lib/data'), {
    ok: true,
    value: { kind: 'named', name: 'data', target: '/var/lib/data', readOnly: false },
  });
  assert.deepEqual(parseVolumeSpec('data:/d:ro'), { ok: true, value: { kind: 'named', name: 'data', target: '/d', readOnly: true } });
  assert.deepEqual(parseVolumeSpec('./site:/srv:rw'), {
    ok: true,
    value: { kind: 'host', source: './site', target: '/srv', readOnly: false },
  });
  assert.deepEqual(parseVolumeSpec('~/src:/src'), { ok: true, value: { kind: 'host', source: '~/src', target: '/src', readOnly: false } });
  assert.deepEqual(parseVolumeSpec('/abs:/x:ro'), { ok: true, value: { kind: 'host', source: '/abs', target: '/x', readOnly: true } });
});

test('bad volume specs say what is wrong', () => {
  const cases: [string, RegExp, RegExp?][] = [
    ['data:/d:rx', /mode "rx" .* not ro or rw/, /:ro/],
    ['data', /no target/],
    ['/data', /no target/, /anonymous/],
    ['data:relative', /not an absolute path/, /data:\/relative/],
    ['a:/b:ro:x', /too many/],
    ['my vol:/x', /neither a volume name nor a host path/],
    [':/x', /source .* empty/],
  ];
  for (const [spec, re, hint] of cases) {
    const r = parseVolumeSpec(spec);
    assert.equal(r.ok, false, spec);
    if (!r.ok) {
      assert.match(r.message, re, spec);
      if (hint) assert.match(r.hint ?? '', hint, spec);
    }
  }
});
