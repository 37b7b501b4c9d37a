import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKdl } from '../../src/load/kdl.js';
import { applyDefaults } from '../../schemas/defaults.js';
import type { VmSpec } from '../../schemas/model.js';

const here = dirname(fileURLToPath(import.meta.url));
const fullDir = resolve(here, '../fixtures/good/kdl/full');
const exampleDir = resolve(here, '../../examples/vmctl-full');
const ENV = { HOME: '/nonexistent-home' };

function load(file: string, env: NodeJS.ProcessEnv = ENV) {
  return loadKdl(file, readFileSync(file, 'utf8'), env);
}

function loadText(text: string, dir = fullDir, env: NodeJS.ProcessEnv = ENV) {
  return loadKdl(join(dir, 'VMFile.kdl'), text, env);
}

function only(text: string, dir = fullDir, env: NodeJS.ProcessEnv = ENV): VmSpec {
  const r = loadText(text, dir, env);
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.vms.length, 1);
  return applyDefaults(r.vms[0].draft);
}

test('every node of the full fixture maps to its canonical field', () => {
  const r = load(join(fullDir, 'VMFile.kdl'));
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.name, 'full');
  assert.deepEqual(r.volumes, { pgdata: { size: 10 } });
  assert.deepEqual(
    r.vms.map((v) => v.draft.name),
    ['web', 'db'],
  );
  const pub = readFileSync(join(fullDir, 'keys/test.pub'), 'utf8').trim();
  const expected: VmSpec = {
    name: 'web',
    service: 'web',
    image: { kind: 'catalog', ref: 'debian:12', format: 'qcow2', checksum: `sha256:${'a'.repeat(64)}`, os: 'debian' },
    cpus: 2,
    memory: 2048,
    disk: 20,
    machine: 'pc',
    cpuModel: 'host',
    firmware: 'uefi',
    accel: 'tcg',
    network: { mode: 'tap', bridge: 'br1' },
    ports: [
      { hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80, protocol: 'tcp' },
      { hostAddress: '0.0.0.0', hostPort: 5353, guestPort: 53, protocol: 'udp' },
      { hostAddress: '127.0.0.1', hostPort: null, guestPort: 443, protocol: 'tcp' },
    ],
    cloudInit: {
      hostname: 'web-1',
      user: 'admin',
      sshAuthorizedKeys: [pub],
      userData: null,
      packages: ['nginx', 'curl', 'htop'],
      writeFiles: [{ path: '/etc/motd', content: 'hello from tend\n', permissions: '0644', owner: null }],
      runcmd: ['systemctl enable --now nginx'],
      bootcmd: ['echo booting'],
    },
    ssh: { user: 'admin', privateKey: join(fullDir, 'keys/test'), port: 2222 },
    provision: [
      { kind: 'shell', inline: ['echo one', 'echo two'] },
      { kind: 'shell', script: join(fullDir, 'scripts/setup.sh') },
      { kind: 'file', source: join(fullDir, 'config/app.conf'), destination: '/etc/app/app.conf' },
    ],
    volumes: [
      { kind: 'named', name: 'pgdata', target: '/var/lib/postgresql', readOnly: false },
      { kind: 'host', source: join(fullDir, 'site'), target: '/srv/site', readOnly: true },
    ],
    devices: [],
    extraArgs: ['-device', 'virtio-rng-pci'],
    video: 'vga',
    graphics: 'none',
    dependsOn: ['db'],
    healthcheck: { test: ['sh', '-c', 'curl -f http://localhost'], interval: 10, retries: 5, startPeriod: 5, timeout: 2 },
    restart: 'on-failure',
    runState: 'stopped',
    disposable: true,
    stopGracePeriod: 90,
    timeouts: { start: null, ssh: 900, login: null, cloudInit: 1800 },
  };
  assert.deepEqual(applyDefaults(r.vms[0].draft), expected);

  const db = applyDefaults(r.vms[1].draft);
  assert.deepEqual(db.image, { kind: 'path', ref: join(fullDir, 'images/base.qcow2'), format: null, checksum: null, os: null });
  assert.equal(db.cloudInit?.userData, join(fullDir, 'user-data.yaml'));
});

test('field locations point at the values, so later checks can place their errors', () => {
  const r = load(join(fullDir, 'VMFile.kdl'));
  const web = r.vms[0];
  const file = join(fullDir, 'VMFile.kdl');
  assert.deepEqual(web.loc, { file, line: 6, column: 1 });
  assert.deepEqual(web.fieldLocs['/memory'], { file, line: 12, column: 12 });
  assert.deepEqual(web.fieldLocs['/dependsOn/0'], { file, line: 54, column: 16 });
  assert.deepEqual(web.fieldLocs['/volumes/1'], { file, line: 53, column: 12 });
  assert.deepEqual(web.fieldLocs['/ports/2'], { file, line: 51, column: 32 });
  assert.deepEqual(web.fieldLocs['/provision/1/script'], { file, line: 44, column: 16 });
  assert.deepEqual(r.volumeLocs.pgdata, { file, line: 4, column: 8 });
});

test("relative paths resolve against the file's folder, not the working directory", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tend-kdl-'));
  try {
    mkdirSync(join(dir, 'scripts'));
    writeFileSync(join(dir, 'scripts/go.sh'), 'echo go\n');
    const spec = only('vm "a" {\n  image "debian:12"\n  provision "shell" { script "scripts/go.sh" }\n}\n', dir);
    assert.deepEqual(spec.provision, [{ kind: 'shell', script: join(dir, 'scripts/go.sh') }]);
    // the same text next to a folder without the script is an error at the script's value
    const r = loadText('vm "a" {\n  image "debian:12"\n  provision "shell" { script "scripts/go.sh" }\n}\n', fullDir);
    assert.equal(r.vms.length, 0);
    assert.equal(r.diagnostics[0].line, 3);
    assert.equal(r.diagnostics[0].column, 30);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('~ expands to HOME for ssh-key, private-key, images and host folders', () => {
  const home = mkdtempSync(join(tmpdir(), 'tend-home-'));
  try {
    mkdirSync(join(home, '.ssh'));
    mkdirSync(join(home, 'images'));
    mkdirSync(join(home, 'src'));
    writeFileSync(join(home, '.ssh/id_ed25519.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHome me@host\n');
    writeFileSync(join(home, '.ssh/id_ed25519'), 'private\n');
    writeFileSync(join(home, 'images/deb.qcow2'), 'x');
    const spec = only(
      `vm "tap-example" {
    image "~/images/deb.qcow2"
    cloud-init {
        ssh-key "~/.ssh/id_ed25519.pub"
    }
    ssh {
        private-key "~/.ssh/id_ed25519"
    }
    volume "~/src:/src"
}
`,
      fullDir,
      { HOME: home },
    );
    assert.deepEqual(spec.image.ref, join(home, 'images/deb.qcow2'));
    assert.equal(spec.image.kind, 'path');
    assert.deepEqual(spec.cloudInit?.sshAuthorizedKeys, ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHome me@host']);
    assert.equal(spec.ssh.privateKey, join(home, '.ssh/id_ed25519'));
    assert.deepEqual(spec.volumes, [{ kind: 'host', source: join(home, 'src'), target: '/src', readOnly: false }]);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("vmctl's full example (three VMs) loads with zero diagnostics", () => {
  const r = load(join(exampleDir, 'VMFile.kdl'));
  assert.deepEqual(r.diagnostics, []);
  const specs = r.vms.map((v) => applyDefaults(v.draft));
  assert.deepEqual(
    specs.map((s) => s.name),
    ['full-example', 'tap-example', 'minimal'],
  );
  const [full, tap, minimal] = specs;
  assert.deepEqual(full.image, {
    kind: 'url',
    ref: 'https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img',
    format: null,
    checksum: null,
    os: null,
  });
  assert.deepEqual([full.cpus, full.memory, full.disk], [4, 4096, 40]);
  assert.equal(full.provision.length, 3);
  assert.deepEqual(full.provision[1], { kind: 'file', source: join(exampleDir, 'config/bashrc'), destination: '/home/ubuntu/.bashrc' });
  assert.deepEqual(tap.network, { mode: 'tap', bridge: 'br0' });
  assert.equal(tap.cloudInit?.sshAuthorizedKeys.length, 1);
  assert.match(tap.cloudInit?.sshAuthorizedKeys[0] ?? '', /^ssh-ed25519 /);
  assert.equal(tap.ssh.privateKey, join(exampleDir, 'keys/demo'));
  assert.deepEqual(minimal.image, { kind: 'catalog', ref: 'ubuntu:noble', format: null, checksum: null, os: null });
  assert.deepEqual([minimal.cpus, minimal.memory, minimal.disk], [1, 1024, null]);
});

test('booleans: KDL 2 #true and KDL 1 true both work; cloud-init #false turns cloud-init off', () => {
  assert.equal(only('vm "a" {\n  image "debian:12"\n  disposable #true\n}\n').disposable, true);
  assert.equal(only('vm "a" {\n  image "debian:12"\n  disposable true\n}\n').disposable, true);
  assert.equal(only('vm "a" {\n  image "debian:12"\n  disposable false\n}\n').disposable, false);
  assert.equal(only('vm "a" {\n  image "debian:12"\n  disposable\n}\n').disposable, true);
  assert.equal(only('vm "a" {\n  image "debian:12"\n  cloud-init #false\n}\n').cloudInit, null);
});

test('a KDL 1 keyword earlier on a line does not shift the columns of later errors', () => {
  // a syntax error (kdljs reports it in the rewritten text) and a semantic one (located by the walker)
  for (const [text, col] of [
    ['disposable true; memory 2G', 27],
    ['disposable true; memory "2G"', 27],
    ['disposable false; vcpus = 2', 27],
  ] as const) {
    const r = loadText(`vm "a" {\n  image "debian:12"\n  ${text}\n}\n`);
    assert.equal(r.diagnostics.length, 1, text);
    assert.deepEqual([r.diagnostics[0].line, r.diagnostics[0].column], [3, col], text);
  }
});

test('comments and /- slash-dashed nodes and values are ignored without moving positions', () => {
  const text = `/* a block
comment */ vm "a" {
  /- memory 4096
  image "debian:12" // trailing comment
  vcpus /-8 2
  /- cloud-init { hostname "x" }
  memory 512
}
`;
  const r = loadText(text);
  assert.deepEqual(r.diagnostics, []);
  const spec = applyDefaults(r.vms[0].draft);
  assert.equal(spec.cpus, 2);
  assert.equal(spec.memory, 512);
  assert.equal(r.vms[0].fieldLocs['/cpus'].column, 13);
  assert.deepEqual([r.vms[0].fieldLocs['/memory'].line, r.vms[0].fieldLocs['/memory'].column], [7, 10]);
  assert.deepEqual([r.vms[0].loc.line, r.vms[0].loc.column], [2, 12]);
});

test('a tap network without a bridge uses br0, as in vmctl', () => {
  assert.deepEqual(only('vm "a" {\n  image "debian:12"\n  network "tap"\n}\n').network, { mode: 'tap', bridge: 'br0' });
  assert.deepEqual(only('vm "a" {\n  image "debian:12"\n}\n').network, { mode: 'user', bridge: null });
});

test('all errors of a file are reported together, sorted, and no VM comes out', () => {
  const r = loadText(`vm "ok" {
  image "debian:12"
}
vm "web" {
  image "debian:12"
  memory "2G"
  vcpus 0
  netwrk "user"
}
`);
  assert.equal(r.vms.length, 0);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.line, d.column]),
    [
      [6, 10],
      [7, 9],
      [8, 3],
    ],
  );
  assert.ok(r.diagnostics.every((d) => d.severity === 'error' && d.file === join(fullDir, 'VMFile.kdl')));
  assert.equal(r.diagnostics[2].hint, 'did you mean "network"?');
});

test('ssh-key pointing at a private key says to use the .pub file', () => {
  const r = loadText('vm "a" {\n  image "debian:12"\n  cloud-init { ssh-key "keys/test"; }\n}\n');
  assert.equal(r.diagnostics.length, 1);
  assert.match(r.diagnostics[0].message, /private key/);
  assert.equal(r.diagnostics[0].hint, 'write ssh-key "keys/test.pub"');
});

test('multi-line and raw strings keep later positions right', () => {
  const text = `vm "a" {
  image "debian:12"
  provision "shell" {
    inline """
      echo one
      echo "two"
      """
    inline #"echo "raw" \\n"#
  }
  device "0000:01:00.0"
  memory "1G"
}
`;
  const r = loadText(text);
  assert.equal(r.diagnostics.length, 1);
  assert.deepEqual([r.diagnostics[0].line, r.diagnostics[0].column], [11, 10]);
  const ok = loadText(text.replace('memory "1G"', 'memory 1024'));
  assert.deepEqual(ok.diagnostics, []);
  const spec = applyDefaults(ok.vms[0].draft);
  assert.deepEqual(spec.provision, [{ kind: 'shell', inline: ['echo one\necho "two"', 'echo "raw" \\n'] }]);
  assert.deepEqual(spec.devices, [{ pci: '0000:01:00.0', romFile: null }]);
  assert.deepEqual([ok.vms[0].fieldLocs['/memory'].line, ok.vms[0].fieldLocs['/devices/0'].line], [11, 10]);
});

test('an empty file is an error at 1:1, not a crash', () => {
  const r = loadText('');
  assert.equal(r.vms.length, 0);
  assert.deepEqual([r.diagnostics[0].line, r.diagnostics[0].column, r.diagnostics[0].message], [1, 1, 'the file declares no VM']);
});

test('a damaged file never throws and never yields a VM alongside errors', () => {
  const file = join(fullDir, 'VMFile.kdl');
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  let damaged = 0;
  for (let i = 0; i < text.length; i += 17) {
    for (const variant of [
      text.slice(0, i),
      text.slice(0, i) + text.slice(i + 1),
      `${text.slice(0, i)}"${text.slice(i)}`,
      `${text.slice(0, i)}}${text.slice(i)}`,
    ]) {
      const r = loadKdl(file, variant, ENV);
      if (r.diagnostics.length > 0) {
        damaged++;
        assert.equal(r.vms.length, 0);
      }
      for (const d of r.diagnostics) {
        assert.ok(d.line >= 1 && d.line <= lines + 1 && d.column >= 1, `${d.line}:${d.column} ${d.message}`);
        assert.doesNotMatch(`${d.message} ${d.hint ?? ''}`, /undefined|NaN|Exception/);
      }
    }
  }
  assert.ok(damaged > 60, `only ${damaged} damaged variants were reported`);
});
