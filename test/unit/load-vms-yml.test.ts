/**
 * The vms.yml (ov) loader against every example in ov's documentation (test/fixtures/good/vms:
 * the `vm` skill, the `arch` skill, the authoring reference, the shape of ov's own vms.yml, and
 * issue 10's example): each loads as a whole project (the canonical schema check included), every
 * key lands in its canonical field with ov's meaning, and keys tend does not act on are warnings
 * that name them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadVmsYml } from '../../src/load/vms-yml.js';
import { loadProject } from '../../src/load/project.js';
import { applyDefaults } from '../../schemas/defaults.js';
import type { VmSpec } from '../../schemas/model.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';

const goodDir = resolve(import.meta.dirname, '../fixtures/good/vms');
const fixtures = readdirSync(goodDir).sort();
const home = mkdtempSync(join(tmpdir(), 'tend-vms-home-'));
const env = { HOME: home };

function load(name: string): { vms: Map<string, VmSpec>; warnings: Diagnostic[] } {
  const file = join(goodDir, name, 'vms.yml');
  const r = loadVmsYml(file, readFileSync(file, 'utf8'), env);
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return { vms: new Map(r.vms.map((v) => [v.draft.name, applyDefaults(v.draft)])), warnings: r.diagnostics };
}

test('there are good vms.yml fixtures for every documented example', () => {
  assert.deepEqual(fixtures, ['authoring', 'issue-10', 'ov-repo', 'skill-arch', 'skill-vm']);
});

for (const name of fixtures) {
  test(`good/vms/${name} loads as a project: no error, every VM passes the canonical schema`, async () => {
    const r = await loadProject([join(goodDir, name, 'vms.yml')], { env, cwd: goodDir });
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    assert.ok(r.project && r.project.vms.length > 0);
    // vms.yml VMs always carry a backend: ov's auto unless the file pins one
    for (const vm of r.project.vms) assert.ok(vm.backend === 'auto' || vm.backend === 'qemu' || vm.backend === 'libvirt');
  });
}

test('the vm skill example: ov units, ssh.port as the host port, sidecar checksum, adopted base_user, video and graphics', () => {
  const { vms, warnings } = load('skill-vm');
  const arch = vms.get('arch');
  assert.ok(arch);
  assert.deepEqual(arch.image, {
    kind: 'url',
    ref: 'https://fastly.mirror.pkgbuild.com/images/latest/Arch-Linux-x86_64-cloudimg.qcow2',
    format: null,
    checksum: null,
    os: null,
    sidecar: 'sha256',
  });
  assert.equal(arch.memory, 8192); // ram: 8G
  assert.equal(arch.disk, 40); // disk_size: 40G
  assert.equal(arch.cpus, 4);
  assert.equal(arch.machine, 'q35');
  assert.equal(arch.firmware, 'bios');
  assert.deepEqual(arch.network, { mode: 'user', bridge: null });
  // ssh.port 2224 is the HOST port forwarded to the guest's sshd on 22
  assert.deepEqual(arch.ports, [{ hostAddress: '127.0.0.1', hostPort: 2224, guestPort: 22, protocol: 'tcp' }]);
  assert.equal(arch.ssh.port, 22);
  assert.equal(arch.ssh.user, 'arch');
  assert.equal(arch.ssh.privateKey, null); // key_source generate: tend's own per-VM key
  assert.equal(arch.cloudInit?.user, 'arch');
  assert.equal(arch.cloudInit?.adoptUser, true);
  assert.deepEqual(arch.cloudInit?.packages, ['sudo', 'spice-vdagent']);
  assert.equal(arch.video, 'virtio');
  assert.equal(arch.graphics, 'spice');
  assert.equal(arch.backend, 'auto'); // vms.yml's default
  const desk = vms.get('selkies-desktop-bootc-bootc');
  assert.ok(desk);
  assert.equal(desk.image.kind, 'bootc');
  assert.equal(desk.image.ref, 'selkies-desktop-bootc');
  assert.deepEqual(desk.image.bootc, { transport: 'registry', rootfs: null, rootSize: null, kernelArgs: [] });
  assert.equal(desk.disk, 40); // "40 GiB"
  assert.equal(desk.memory, 8192);
  assert.equal(desk.ssh.user, 'root');
  assert.deepEqual(desk.ports, [{ hostAddress: '127.0.0.1', hostPort: 2250, guestPort: 22, protocol: 'tcp' }]);
  // what tend does not act on is named, never dropped silently
  assert.deepEqual(
    warnings.map((w) => `${w.line}:${w.column} ${w.severity} ${w.message.split(':')[0]}`),
    ['20:7 warning cloud_init.ov_install of vm arch is not applied by tend', '23:33 warning video vram of vm arch is not applied by tend'],
  );
});

test('the arch skill example: base_user in source, structured devices become libvirt snippets, timezone', () => {
  const { vms, warnings } = load('skill-arch');
  const arch = vms.get('arch');
  assert.ok(arch);
  assert.equal(arch.cloudInit?.user, 'arch');
  assert.equal(arch.cloudInit?.adoptUser, true);
  assert.equal(arch.cloudInit?.timezone, 'UTC');
  assert.deepEqual(arch.cloudInit?.runcmd, [
    'pacman-key --init',
    'pacman-key --populate archlinux',
    'systemctl enable --now spice-vdagentd',
  ]);
  assert.deepEqual(arch.libvirt?.snippets, [
    "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>",
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
    "<memballoon model='virtio'/>",
  ]);
  assert.ok(warnings.some((w) => w.message.startsWith('graphics listen of vm arch is not applied')));
});

test("ov's own vms.yml: disposable, a raw snippet, bootc VMs with and without ssh, warnings for lifecycle", () => {
  const { vms, warnings } = load('ov-repo');
  assert.deepEqual(
    [...vms.keys()],
    ['arch-cloud-base', 'aurora-bootc', 'bazzite-ai-bootc', 'openclaw-browser-bootc-bootc', 'selkies-desktop-bootc-bootc'],
  );
  const arch = vms.get('arch-cloud-base');
  assert.ok(arch);
  assert.equal(arch.disposable, true);
  assert.ok(arch.libvirt?.snippets.includes("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"));
  assert.equal(arch.cloudInit?.runcmd[1].trim().split('\n')[0], "bash -lc '");
  const aurora = vms.get('aurora-bootc');
  assert.ok(aurora);
  assert.equal(aurora.disk, 80);
  assert.equal(aurora.memory, 12 * 1024);
  assert.deepEqual(aurora.ports, []); // no ssh.port: tend picks the SSH host port
  assert.equal(aurora.ssh.user, 'root'); // ov's default for bootc
  const bazzite = vms.get('bazzite-ai-bootc');
  assert.equal(bazzite?.disk, null);
  assert.ok(warnings.some((w) => w.message.startsWith('lifecycle of vm arch-cloud-base is not applied') && w.line === 13));
  // ov_install strategy skip means what tend does anyway: no warning
  assert.ok(!warnings.some((w) => w.message.includes('ov_install')));
});

test('the authoring reference: cpu, units, uefi-insecure, port_forwards, i440fx, bootc options, bridge mode, pinned backends', () => {
  const { vms, warnings } = load('authoring');
  assert.deepEqual(warnings, []);
  const fedora = vms.get('fedora');
  assert.ok(fedora);
  assert.equal(fedora.cpus, 2); // cpu: 2 (ov's singular key)
  assert.equal(fedora.memory, 8192); // "8192M"
  assert.equal(fedora.disk, 10); // "10 GiB"
  assert.equal(fedora.firmware, 'uefi'); // uefi-insecure: UEFI without Secure Boot
  assert.equal(fedora.image.checksum, 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
  assert.equal(fedora.image.sidecar, undefined);
  assert.deepEqual(
    fedora.ports.map((p) => `${p.hostPort}:${p.guestPort}`),
    ['8080:80', '8443:443', '2230:22'],
  );
  assert.equal(fedora.cloudInit?.timezone, 'Europe/Berlin');
  const secure = vms.get('secure');
  assert.ok(secure);
  assert.equal(secure.machine, 'pc'); // ov's i440fx
  assert.equal(secure.firmware, 'uefi-secure');
  assert.equal(secure.backend, 'qemu');
  assert.equal(secure.ssh.user, 'core');
  assert.deepEqual(secure.image.bootc, { transport: 'registry', rootfs: 'xfs', rootSize: 10, kernelArgs: ['console=ttyS0', 'quiet'] });
  const bridged = vms.get('bridged');
  assert.ok(bridged);
  assert.deepEqual(bridged.network, { mode: 'tap', bridge: 'br0' });
  assert.equal(bridged.backend, 'libvirt');
  assert.equal(bridged.connect, 'qemu:///system');
  assert.equal(bridged.ssh.user, 'ov'); // ov's user for a cloud image without base_user
});

test('issue 10 example: network_config, snippets, and a bootc VM with only a source', () => {
  const { vms } = load('issue-10');
  const arch = vms.get('arch');
  assert.deepEqual(arch?.cloudInit?.networkConfig, { version: 2, ethernets: { eth0: { dhcp4: true } } });
  assert.equal(arch?.libvirt?.snippets.length, 1);
  const desktop = vms.get('desktop');
  assert.equal(desktop?.image.kind, 'bootc');
  assert.equal(desktop?.image.ref, 'my-bootc-image');
});

test('ssh.key_source: auto adds the first ~/.ssh/*.pub; a .pub path adds it and logs in with its private key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-vms-keys-'));
  try {
    mkdirSync(join(dir, '.ssh'));
    writeFileSync(join(dir, '.ssh', 'b.pub'), 'ssh-ed25519 AAAAB b@x\n');
    writeFileSync(join(dir, '.ssh', 'a.pub'), 'ssh-ed25519 AAAAA a@x\n');
    writeFileSync(join(dir, 'deploy'), 'PRIVATE\n');
    writeFileSync(join(dir, 'deploy.pub'), 'ssh-ed25519 AAAAD deploy@x\n');
    const text = `vms:
  one:
    source: {kind: cloud_image, url: https://example.org/a.qcow2}
    ssh: {key_source: auto}
  two:
    source: {kind: cloud_image, url: https://example.org/a.qcow2}
    ssh: {key_source: ./deploy.pub}
  three:
    source: {kind: cloud_image, url: https://example.org/a.qcow2}
    ssh: {key_source: none}
`;
    const r = loadVmsYml(join(dir, 'vms.yml'), text, { HOME: dir });
    const specs = r.vms.map((v) => applyDefaults(v.draft));
    assert.deepEqual(specs[0].cloudInit?.sshAuthorizedKeys, ['ssh-ed25519 AAAAA a@x']);
    assert.equal(specs[0].ssh.privateKey, null);
    assert.deepEqual(specs[1].cloudInit?.sshAuthorizedKeys, ['ssh-ed25519 AAAAD deploy@x']);
    assert.equal(specs[1].ssh.privateKey, join(dir, 'deploy'));
    // none: tend still needs its own key, and says so
    assert.deepEqual(
      r.diagnostics.map((d) => `${d.line}:${d.severity}`),
      ['10:warning'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backend qemu with a libvirt block: a warning that names it', () => {
  const r = loadVmsYml(
    '/p/vms.yml',
    `vms:
  web:
    source: {kind: cloud_image, url: https://example.org/a.qcow2}
    backend: qemu
    libvirt:
      snippets: ["<memballoon model='none'/>"]
`,
    env,
  );
  assert.equal(r.diagnostics.length, 1);
  assert.equal(r.diagnostics[0].severity, 'warning');
  assert.match(r.diagnostics[0].message, /applies only to the libvirt backend/);
  assert.equal(r.diagnostics[0].line, 5);
});
