/**
 * Warm clones (issue 15 §2): `warm` in every dialect and `tend run --warm`; what keys a template
 * (the hostname is not part of it, hardware is); which argv differences a clone may have (names,
 * files, host ports) and which refuse it (memory, machine, MACs); the identity script is valid sh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { cloneIneligible, portableArgv, templateKey } from '../../src/qemu/template-key.js';
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
  assert.equal(templateKey(a, 'img1'), templateKey(b, 'img1'));
  assert.notEqual(templateKey(a, 'img1'), templateKey(a, 'img2'));
  assert.notEqual(templateKey(a, 'img1'), templateKey(await vmOf(svc('a').replace('1024', '2048')), 'img1'));
  assert.notEqual(templateKey(a, 'img1'), templateKey(await vmOf(svc('a', '    cloud_init: { packages: [jq] }\n')), 'img1'));
  assert.match(templateKey(a, 'img1'), /^[0-9a-f]{16}$/);
});

test('eligibility: user network alone; not TAP, the project network, volumes or UEFI', async () => {
  const a = await vmOf(svc('a'));
  assert.equal(cloneIneligible(a, false), null);
  assert.match(cloneIneligible(a, true) ?? '', /project network/);
  assert.match(cloneIneligible({ ...a, network: { mode: 'tap', bridge: 'br0' } }, false) ?? '', /tap network/);
  assert.match(cloneIneligible({ ...a, firmware: 'uefi' }, false) ?? '', /UEFI/);
  assert.match(cloneIneligible({ ...a, volumes: [{ kind: 'named', name: 'v', target: '/v', readOnly: false }] }, false) ?? '', /volumes/);
});

test('portableArgv: names, files, sockets and host ports may differ; memory, machine and MACs may not', async () => {
  const argvOf = (vm: VmSpec, dir: string, port: number, mac?: string) =>
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
      ...(mac ? { projectNet: null } : {}),
    });
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
  const withMac = [...tb, '-device', 'virtio-net-pci,netdev=pn0,mac=52:54:00:00:00:02'];
  const withOtherMac = [...tb, '-device', 'virtio-net-pci,netdev=pn0,mac=52:54:00:00:00:03'];
  assert.ok(argvDifference(portableArgv(withMac), portableArgv(withOtherMac)), 'a MAC is not masked');
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
