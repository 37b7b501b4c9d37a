import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { assignAddresses, projectMac, projectNetMember, projectSegment, wantsProjectNet } from '../../src/net/project-net.js';
import { HOSTS_BEGIN, projectNetBootcmd, renderNetworkConfig } from '../../src/seed/network-config.js';
import { ensureProjectNet, projectNetArgs, projectNetFile } from '../../src/qemu/project-net.js';

const img = { kind: 'catalog', ref: 'debian:12' } as const;
function project(...vms: VmDraft[]): Project {
  return { name: 'p', dir: '/p', files: [], volumes: {}, vms: vms.map(applyDefaults) };
}
const app = project({ name: 'web', image: img }, { name: 'db-0', service: 'db', image: img }, { name: 'db-1', service: 'db', image: img });

test('two projects get different multicast segments; one project always the same', () => {
  const a = projectSegment('/state/projects/a-1234');
  const b = projectSegment('/state/projects/b-5678');
  assert.deepEqual(projectSegment('/state/projects/a-1234'), a);
  assert.notDeepEqual(a, b);
  for (const s of [a, b]) {
    assert.match(s.group, /^239\.\d+\.\d+\.\d+$/);
    assert.ok(s.port >= 20000 && s.port < 50000);
  }
});

test('MACs are stable per project and VM, unicast, and differ between VMs and projects', () => {
  const m = projectMac('/s/p', 'web');
  assert.equal(projectMac('/s/p', 'web'), m);
  assert.match(m, /^52:54:7e(:[0-9a-f]{2}){3}$/);
  assert.notEqual(projectMac('/s/p', 'db'), m);
  assert.notEqual(projectMac('/s/q', 'web'), m);
});

test('addresses are assigned in order, kept across changes, and freed numbers are reused', () => {
  assert.deepEqual(assignAddresses(['web', 'db']), { web: 10, db: 11 });
  // a VM added before the others does not move their addresses
  assert.deepEqual(assignAddresses(['cache', 'web', 'db'], { web: 10, db: 11 }), { cache: 12, web: 10, db: 11 });
  // a removed VM frees its number for the next new one
  assert.deepEqual(assignAddresses(['db', 'new'], { web: 10, db: 11 }), { db: 11, new: 10 });
  // a corrupt or duplicated record is repaired
  assert.deepEqual(assignAddresses(['a', 'b'], { a: 10, b: 10 }), { a: 10, b: 11 });
});

test('every VM knows every other by instance and service name', () => {
  const m = projectNetMember(app, '/s/p', 'web', { web: 10, 'db-0': 11, 'db-1': 12 });
  assert.ok(m);
  assert.equal(m.address, '10.213.0.10');
  assert.deepEqual(m.hosts, [
    { address: '10.213.0.10', names: ['web'] },
    { address: '10.213.0.11', names: ['db-0', 'db'] },
    { address: '10.213.0.12', names: ['db-1', 'db'] },
  ]);
  // a single-VM project gets no project network
  assert.equal(wantsProjectNet(project({ name: 'solo', image: img })), false);
  assert.equal(projectNetMember(project({ name: 'solo', image: img }), '/s/p', 'solo', { solo: 10 }), null);
});

test('network-config v2 pins DHCP to the user NIC and the static address to the project NIC by MAC', () => {
  const m = projectNetMember(app, '/s/p', 'db-0', { web: 10, 'db-0': 11, 'db-1': 12 });
  assert.ok(m);
  const doc = parse(renderNetworkConfig(m)) as {
    version: number;
    ethernets: Record<string, { match: { macaddress: string }; dhcp4: boolean; addresses?: string[] }>;
  };
  assert.equal(doc.version, 2);
  assert.deepEqual(doc.ethernets.user0.match, { macaddress: '52:54:00:12:34:56' });
  assert.equal(doc.ethernets.user0.dhcp4, true);
  assert.deepEqual(doc.ethernets.project0.match, { macaddress: m.mac });
  assert.deepEqual(doc.ethernets.project0.addresses, ['10.213.0.11/24']);
  for (const e of Object.values(doc.ethernets)) assert.equal('set-name' in e, false, 'NICs keep their kernel names');
  // cloud-init parses YAML 1.1, where an unquoted 52:54:00:12:34:56 is a (base-60) number
  const v11 = parse(renderNetworkConfig(m), { version: '1.1' }) as typeof doc;
  assert.equal(v11.ethernets.user0.match.macaddress, '52:54:00:12:34:56');
  assert.equal(typeof v11.ethernets.project0.match.macaddress, 'string');
});

test('the hosts bootcmd replaces its own /etc/hosts block and keeps the rest', () => {
  const m = projectNetMember(app, '/s/p', 'web', { web: 10, 'db-0': 11, 'db-1': 12 });
  assert.ok(m);
  const dir = mkdtempSync(join(tmpdir(), 'tend-hosts-'));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, `127.0.0.1 localhost\n${HOSTS_BEGIN}\n10.9.9.9 stale\n# END tend project network\n::1 ip6-localhost\n`);
  const tmpl = join(dir, 'hosts.debian.tmpl');
  writeFileSync(tmpl, '## template:jinja\n127.0.1.1 {{fqdn}} {{hostname}}\n');
  const script = projectNetBootcmd(m)
    .replace('/etc/cloud/templates/hosts.*.tmpl', `${dir}/hosts.*.tmpl`)
    .replaceAll('/etc/hosts', hosts)
    .replace('for i in /sys/class/net/*', `for i in ${dir}/none*`);
  assert.doesNotMatch(script, /\/etc\//, 'the test script touches nothing of this host');
  execFileSync('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'ignore'] });
  execFileSync('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'ignore'] });
  const text = readFileSync(hosts, 'utf8');
  assert.doesNotMatch(text, /stale/);
  assert.match(text, /^127\.0\.0\.1 localhost$/m);
  assert.match(text, /^::1 ip6-localhost$/m);
  assert.match(text, /^10\.213\.0\.11 db-0 db$/m);
  assert.equal(text.split(HOSTS_BEGIN).length, 2, 'exactly one block after two boots');
  const t = readFileSync(tmpl, 'utf8');
  assert.match(t, /^## template:jinja\n127\.0\.1\.1 \{\{fqdn\}\}/);
  assert.match(t, /^10\.213\.0\.12 db-1 db$/m, "cloud-init's hosts template carries the block too");
  assert.equal(t.split(HOSTS_BEGIN).length, 2);
});

test('the QEMU project NIC joins the project multicast group on loopback with the VM MAC', () => {
  const m = projectNetMember(app, '/s/p', 'web', { web: 10, 'db-0': 11, 'db-1': 12 });
  assert.ok(m);
  const argv = projectNetArgs(m);
  assert.deepEqual(argv[0], '-netdev');
  assert.equal(argv[1], `socket,id=pn0,mcast=${m.segment.group}:${m.segment.port},localaddr=127.0.0.1`);
  assert.equal(argv[3], `virtio-net-pci,netdev=pn0,mac=${m.mac}`);
});

test('ensureProjectNet persists the assignment so addresses survive a changed file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-pnet-'));
  const a = await ensureProjectNet(app, dir, 'db-1');
  assert.equal(a?.address, '10.213.0.12');
  assert.deepEqual(JSON.parse(readFileSync(projectNetFile(dir), 'utf8')), { addresses: { web: 10, 'db-0': 11, 'db-1': 12 } });
  const reordered = project({ name: 'db-1', service: 'db', image: img }, { name: 'new', image: img }, { name: 'web', image: img });
  const b = await ensureProjectNet(reordered, dir, 'db-1');
  assert.equal(b?.address, '10.213.0.12');
  assert.equal((await ensureProjectNet(reordered, dir, 'new'))?.address, '10.213.0.11', 'the number db-0 left is reused');
  assert.equal((await ensureProjectNet(reordered, dir, 'web'))?.address, '10.213.0.10');
});
