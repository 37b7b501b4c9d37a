/**
 * Warm clones (issue 15 §2): `warm` in every dialect and `tend run --warm`; what keys a template
 * (the hostname is not part of it, hardware is); which argv differences a clone may have (names,
 * files, host ports) and which refuse it (memory, machine, MACs); the identity script is valid sh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { cloneIneligible, portableArgv, projectNicMac, templateKey } from '../../src/qemu/template-key.js';
import { projectNetMember, type ProjectNetMember } from '../../src/net/project-net.js';
import { argvDifference } from '../../src/qemu/saved-state.js';
import { identityScript } from '../../src/qemu/clone.js';
import { parseRunArgs } from '../../src/cli/commands/run.js';
import { runProjectYaml } from '../../src/cli/run-folder.js';
import { buildArgv } from '../../src/qemu/argv.js';
import type { VmSpec } from '../../schemas/model.js';

async function load(file: string, text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tend-warm-'));
  try {
    writeFileSync(join(dir, file), text);
    return await loadProject([join(dir, file)], { cwd: dir, env: { HOME: dir } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DIALECTS: [string, (v: string) => string][] = [
  ['tend.yaml', (w) => `name: p\nservices:\n  web:\n    image: debian:12\n    warm: ${w}\n`],
  ['holos.yaml', (w) => `name: p\nservices:\n  web:\n    image: debian:12\n    warm: ${w}\n`],
  ['VMFile.kdl', (w) => `vm "web" {\n  image "debian:12"\n  warm #${w}\n}\n`],
  ['vms.yml', (w) => `vms:\n  web:\n    source: { kind: cloud_image, url: https://example.org/d.qcow2 }\n    warm: ${w}\n`],
];

for (const [file, text] of DIALECTS) {
  test(`${file}: warm true / false / absent, and a wrong value`, async () => {
    const on = await load(file, text('true'));
    assert.deepEqual(
      on.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    assert.equal(on.project?.vms[0]?.warm, true);
    assert.equal((await load(file, text('false'))).project?.vms[0]?.warm, undefined);
    const bad = await load(file, text('true').replace(/#?true/, file === 'VMFile.kdl' ? '"yes please"' : 'sometimes'));
    assert.ok(
      bad.diagnostics.some((d) => d.severity === 'error'),
      'a wrong value is an error',
    );
  });
}

test('tend run is warm by default, --no-warm keeps it cold; tend create is cold', async () => {
  const warmOfYaml = async (yaml: string) => (await load('tend.yaml', yaml)).project?.vms[0]?.warm ?? false;
  const plain = parseRunArgs(['debian:12', '--', 'hostname']);
  assert.equal(await warmOfYaml(runProjectYaml(plain, 'd', '/tmp')), true, 'run: warm by default');
  assert.equal(await warmOfYaml(runProjectYaml(parseRunArgs(['debian:12', '--warm']), 'd', '/tmp')), true, '--warm: the default');
  const cold = parseRunArgs(['debian:12', '--no-warm', '--', 'hostname']);
  assert.equal(cold.warm, false);
  assert.equal(await warmOfYaml(runProjectYaml(cold, 'd', '/tmp')), false, '--no-warm');
  assert.equal(await warmOfYaml(runProjectYaml({ image: 'debian:12' }, 'd', '/tmp', 'create')), false, 'create');
});

async function vmOf(yaml: string): Promise<VmSpec> {
  const r = await load('tend.yaml', yaml);
  assert.ok(r.project, JSON.stringify(r.diagnostics));
  return r.project.vms[0]!;
}

const svc = (name: string, extra = '') =>
  `name: p\nservices:\n  ${name}:\n    image: debian:12\n    vm: { vcpu: 1, memory_mb: 1024 }\n${extra}`;

test('the template key: the same for another name and hostname, not for other hardware, seed or image', async () => {
  const a = await vmOf(svc('a'));
  const b = await vmOf(svc('b', '    cloud_init: { hostname: other }\n'));
  assert.equal(templateKey(a, 'img1', false), templateKey(b, 'img1', false));
  assert.notEqual(templateKey(a, 'img1', false), templateKey(a, 'img2', false));
  assert.notEqual(templateKey(a, 'img1', false), templateKey(await vmOf(svc('a').replace('1024', '2048')), 'img1', false));
  assert.notEqual(templateKey(a, 'img1', false), templateKey(await vmOf(svc('a', '    cloud_init: { packages: [jq] }\n')), 'img1', false));
  assert.match(templateKey(a, 'img1', false), /^[0-9a-f]{16}$/);
});

test('the template key on the project network: "has a project NIC" only, not which project, MAC, address or hosts', async () => {
  const two = (names: [string, string], extra = '') =>
    `name: p\nservices:\n${names.map((n) => `  ${n}:\n    image: debian:12\n    vm: { vcpu: 1, memory_mb: 1024 }\n${extra}`).join('')}`;
  const r1 = await load('tend.yaml', two(['a', 'b']));
  const r2 = await load('tend.yaml', two(['x', 'y']).replace('name: p', 'name: q'));
  const [a, b] = r1.project!.vms;
  const [x] = r2.project!.vms;
  const k = templateKey(a!, 'img1', true);
  assert.equal(templateKey(b!, 'img1', true), k, 'another member of the same project');
  assert.equal(templateKey(x!, 'img1', true), k, 'a member of another project (other segment, MACs and addresses)');
  assert.notEqual(templateKey(a!, 'img1', false), k, 'a VM without the project NIC has other devices');
  // a one-VM project's key is what it was before clones on the project network existed
  assert.equal(templateKey(a!, 'img1', false), templateKey(await vmOf(svc('a')), 'img1', false));
});

test('eligibility: user network, the project network included, TAP, UEFI and volumes too; not no network', async () => {
  const a = await vmOf(svc('a'));
  assert.equal(cloneIneligible(a), null);
  // TAP clones: test/unit/tap-clone.test.ts
  assert.equal(cloneIneligible({ ...a, network: { mode: 'tap', bridge: 'br0' } }), null);
  assert.match(cloneIneligible({ ...a, network: { mode: 'none', bridge: null } }) ?? '', /no network/);
  assert.equal(cloneIneligible({ ...a, firmware: 'uefi' }), null);
  assert.equal(cloneIneligible({ ...a, firmware: 'uefi-secure' }), null);
  // volumes and host folders are hot-plugged into a clone (test/unit/hotplug.test.ts)
  assert.equal(cloneIneligible({ ...a, volumes: [{ kind: 'named', name: 'v', target: '/v', readOnly: false }] }), null);
});

const argvOf = (vm: VmSpec, dir: string, port: number, projectNet: ProjectNetMember | null = null) =>
  buildArgv({
    vm,
    accel: 'tcg',
    paths: {
      disk: `${dir}/disk.qcow2`,
      seed: `${dir}/seed.iso`,
      pidfile: `${dir}/qemu.pid`,
      qmp: `${dir}/qmp.sock`,
      qmpEvents: `${dir}/qmp-events.sock`,
      serial: `${dir}/serial.sock`,
      consoleLog: `${dir}/console.log`,
      volumes: {},
    },
    ports: [],
    sshPort: port,
    projectNet,
  });

test('portableArgv: names, files, sockets and host ports may differ; memory, machine and the user MAC may not', async () => {
  const a = await vmOf(svc('a'));
  const b = await vmOf(svc('b'));
  const ta = argvOf(a, '/s/projects/x/vms/a', 40001);
  const tb = argvOf(b, '/s/projects/y/vms/b', 40777);
  assert.notDeepEqual(ta, tb);
  assert.equal(argvDifference(portableArgv(ta), portableArgv(tb)), null);
  const bigger = argvOf({ ...b, memory: 2048 }, '/s/projects/y/vms/b', 40777);
  assert.equal(argvDifference(portableArgv(ta), portableArgv(bigger)), '-m 1024 → -m 2048');
  const machine = argvOf({ ...b, machine: 'pc' }, '/s/projects/y/vms/b', 40777);
  assert.ok(argvDifference(portableArgv(ta), portableArgv(machine)));
  const withMac = [...tb, '-device', 'virtio-net-pci,netdev=n1,mac=52:54:00:00:00:02'];
  const withOtherMac = [...tb, '-device', 'virtio-net-pci,netdev=n1,mac=52:54:00:00:00:03'];
  assert.ok(argvDifference(portableArgv(withMac), portableArgv(withOtherMac)), "another NIC's MAC is not masked");
});

test("portableArgv on the project network: the project NIC's MAC and segment are masked, the NIC itself is not", async () => {
  const r1 = await load('tend.yaml', 'name: p\nservices:\n  a: { image: debian:12 }\n  b: { image: debian:12 }\n');
  const r2 = await load('tend.yaml', 'name: q\nservices:\n  x: { image: debian:12 }\n  y: { image: debian:12 }\n');
  const p1 = r1.project!;
  const p2 = r2.project!;
  const assignment = { a: 10, b: 11, x: 10, y: 11 };
  const ma = projectNetMember(p1, '/s/projects/p', 'a', assignment)!;
  const mb = projectNetMember(p1, '/s/projects/p', 'b', assignment)!;
  const my = projectNetMember(p2, '/s/projects/q', 'y', assignment)!;
  assert.notEqual(ma.mac, mb.mac);
  assert.notDeepEqual(ma.segment, my.segment);
  const ta = argvOf(p1.vms[0]!, '/s/projects/p/vms/a', 40001, ma);
  const tb = argvOf(p1.vms[1]!, '/s/projects/p/vms/b', 40002, mb);
  const ty = argvOf(p2.vms[1]!, '/s/projects/q/vms/y', 40003, my);
  assert.ok(ta.some((x) => x.includes(`mac=${ma.mac}`)));
  assert.equal(argvDifference(portableArgv(ta), portableArgv(tb)), null, 'another member of the project');
  assert.equal(argvDifference(portableArgv(ta), portableArgv(ty)), null, 'a member of another project');
  assert.equal(projectNicMac(ta), ma.mac, "the template's project MAC is read back from its argv");
  assert.equal(projectNicMac(argvOf(p1.vms[0]!, '/s/projects/p/vms/a', 40001)), null);
  // a VM without the project NIC has fewer devices: never restored from a template with one
  assert.ok(argvDifference(portableArgv(ta), portableArgv(argvOf(p1.vms[0]!, '/s/projects/p/vms/a', 40001))));
});

test('the identity script is valid sh and sets every part of the identity', () => {
  const script = identityScript({
    hostname: 'c1',
    machineId: '0123456789abcdef0123456789abcdef',
    seedHex: Buffer.alloc(64, 7).toString('hex'),
    hostKeyB64: Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\n...\n').toString('base64'),
    hostKeyPub: 'ssh-ed25519 AAAAC3Nza root@c1',
    instanceId: 'i-0123',
    user: 'tend',
    loginSwap: { drop: 'AAAAold', add: "ssh-ed25519 AAAAnew tend@c1 it's" },
  });
  execFileSync('sh', ['-n', '-c', script]);
  for (const part of [
    /\/etc\/hostname/,
    /\/etc\/hosts/,
    /\/etc\/machine-id/,
    /0x5207/,
    /ssh_host_ed25519_key/,
    /previous-instance-id/,
    /authorized_keys/,
  ])
    assert.match(script, part);
});

test("the identity script on the project network: the template's NIC gets the VM's MAC, address and hosts block", () => {
  const r = {
    segment: { group: '239.1.2.3', port: 20001 },
    mac: '52:54:7e:00:00:0b',
    address: '10.213.0.11',
    prefix: 24,
    hosts: [
      { address: '10.213.0.10', names: ['a'] },
      { address: '10.213.0.11', names: ['b', 'web'] },
    ],
  };
  const base = {
    hostname: 'b',
    machineId: '0123456789abcdef0123456789abcdef',
    seedHex: '00',
    hostKeyB64: 'AA==',
    hostKeyPub: 'ssh-ed25519 AAAA root@b',
    instanceId: 'i-1',
    user: 'tend',
    loginSwap: null,
  };
  const script = identityScript({ ...base, net: { templateMac: '52:54:7e:00:00:0a', member: r } });
  execFileSync('sh', ['-n', '-c', script]);
  assert.match(script, /tmac='?52:54:7e:00:00:0a'?; pmac='?52:54:7e:00:00:0b'?; paddr='?10.213.0.11\/24'?;/);
  assert.match(script, /ip link set dev "\$pdev" address "\$pmac"/);
  assert.match(script, /ip -4 addr flush dev "\$pdev"/);
  assert.match(script, /# BEGIN tend project network\n10.213.0.10 a\n10.213.0.11 b web\n# END tend project network/);
  // after the hostname's field-by-field edit of /etc/hosts, which would rename the template's own entry
  assert.ok(script.indexOf('tmac=') > script.indexOf('/etc/hosts.tend'));
  assert.doesNotMatch(identityScript(base), /pmac=/, 'no project NIC, no change to it');

  // the rewrite of the guest's network files, run on copies of what Debian 12's cloud-init wrote
  // at the template's first boot (ifupdown, udev); other addresses and files are left alone
  const dir = mkdtempSync(join(tmpdir(), 'tend-netfiles-'));
  try {
    const eni = join(dir, '50-cloud-init');
    const udev = join(dir, '70-persistent-net.rules');
    const other = join(dir, 'unrelated');
    writeFileSync(
      eni,
      'auto eth0\niface eth0 inet dhcp\n\nauto eth1\niface eth1 inet static\n    address 10.213.0.10/24\n# 10.213.0.100/24 110.213.0.10/24\n',
    );
    writeFileSync(
      udev,
      'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\nSUBSYSTEM=="net", ATTR{address}=="52:54:7E:00:00:0A", NAME="eth1"\n',
    );
    writeFileSync(other, 'address 10.213.0.12/24\n');
    const loop = /^for f in \/etc\/network\/interfaces .*?^done$/ms.exec(script)?.[0];
    assert.ok(loop, 'the script rewrites the network files');
    const vars = /^tmac=.*$/m.exec(script)![0];
    execFileSync('sh', ['-c', `${vars}\ntaddr=10.213.0.10/24\n${loop.replace(/^for f in [^;]*;/, `for f in ${eni} ${udev} ${other};`)}`]);
    assert.equal(
      readFileSync(eni, 'utf8'),
      'auto eth0\niface eth0 inet dhcp\n\nauto eth1\niface eth1 inet static\n    address 10.213.0.11/24\n# 10.213.0.100/24 110.213.0.10/24\n',
    );
    assert.equal(
      readFileSync(udev, 'utf8'),
      'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\nSUBSYSTEM=="net", ATTR{address}=="52:54:7e:00:00:0b", NAME="eth1"\n',
    );
    assert.equal(readFileSync(other, 'utf8'), 'address 10.213.0.12/24\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
