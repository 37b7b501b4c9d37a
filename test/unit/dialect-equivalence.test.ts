/**
 * The same VM written in VMFile.kdl and in tend.yaml loads to the same canonical VmSpec:
 * everything after loading is dialect-blind, so the two files must mean exactly the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKdl } from '../../src/load/kdl.js';
import { loadCompose } from '../../src/load/compose.js';
import { applyDefaults } from '../../schemas/defaults.js';
import type { DialectResult } from '../../src/load/common.js';
import type { VmSpec } from '../../schemas/model.js';

function specs(r: DialectResult): VmSpec[] {
  assert.deepEqual(r.diagnostics, []);
  return r.vms.map((v) => applyDefaults(v.draft));
}

test('a VM in VMFile.kdl and the same VM in tend.yaml load to deep-equal VmSpecs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-equiv-'));
  try {
    mkdirSync(join(dir, 'site'));
    mkdirSync(join(dir, 'scripts'));
    writeFileSync(join(dir, 'site/index.html'), 'hi\n');
    writeFileSync(join(dir, 'scripts/setup.sh'), 'echo setup\n');
    writeFileSync(join(dir, 'id.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEquiv equiv@test\n');

    const kdl = `volume "data" { size 5 }
vm "web" {
    image "debian:12"
    vcpus 2
    memory 2048
    disk 20
    port "8080:80"
    port "53/udp"
    volume "data:/var/lib/data"
    volume "./site:/srv/site:ro"
    cloud-init {
        hostname "web-host"
        ssh-key "id.pub"
        package "nginx" "curl"
        runcmd "systemctl enable --now nginx"
        write-file "/etc/motd" {
            content "web tier\\n"
            permissions "0644"
        }
    }
    provision "shell" {
        inline "echo hello"
    }
    provision "shell" {
        script "scripts/setup.sh"
    }
    stop-grace-period "45s"
    timeouts { ssh "12m"; cloud-init "1h"; }
    restart "on-failure"
    disposable #true
}
`;
    const yaml = `services:
  web:
    image: debian:12
    vm:
      vcpu: 2
      memory_mb: 2048
      disk_size: 20G
    ports:
      - "8080:80"
      - "53/udp"
    volumes:
      - data:/var/lib/data
      - ./site:/srv/site:ro
    cloud_init:
      hostname: web-host
      ssh_authorized_keys: [./id.pub]
      packages: [nginx, curl]
      runcmd:
        - systemctl enable --now nginx
      write_files:
        - path: /etc/motd
          content: "web tier\\n"
          permissions: "0644"
    provision:
      - shell: echo hello
      - script: ./scripts/setup.sh
    stop_grace_period: 45s
    timeouts: { ssh: 12m, cloud_init: 1h }
    restart: on-failure
    disposable: true
volumes:
  data:
    size: 5
`;
    const env = { HOME: dir };
    const fromKdl = loadKdl(join(dir, 'VMFile.kdl'), kdl, env);
    const fromYaml = loadCompose(join(dir, 'tend.yaml'), yaml, env);
    const a = specs(fromKdl);
    const b = specs(fromYaml);
    assert.equal(a.length, 1);
    assert.deepEqual(a, b);
    assert.deepEqual(fromKdl.volumes, fromYaml.volumes);
    // and they are not trivially equal: the fields were really read
    assert.equal(a[0].memory, 2048);
    assert.deepEqual(a[0].cloudInit?.packages, ['nginx', 'curl']);
    assert.equal(a[0].ports.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
