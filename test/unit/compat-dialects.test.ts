/** holos.yaml and VMFile.kdl meanings that differ from tend.yaml's (issue 11 §2-§3). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { planCommand } from '../../src/cli/commands/plan.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';

function write(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tend-compat-'));
  for (const [n, c] of Object.entries(files)) writeFileSync(join(dir, n), c);
  return dir;
}

async function load(name: string, text: string, files: Record<string, string> = {}) {
  const dir = write({ [name]: text, ...files });
  const r = await loadProject([join(dir, name)], { cwd: dir, env: { HOME: dir } });
  const brief = (d: Diagnostic) => `${d.file.slice(dir.length + 1)}:${d.line} ${d.severity}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`;
  return {
    ...r,
    dir,
    errors: r.diagnostics.filter((d) => d.severity === 'error').map(brief),
    warnings: r.diagnostics.filter((d) => d.severity === 'warning').map(brief),
  };
}

test('holos.yaml sizes: a bare number is bytes, 512M is accepted (rounded up to whole GiB, with a warning), tiny sizes say what was meant', async () => {
  const ok = await load(
    'holos.yaml',
    'services:\n  a:\n    image: debian:12\n    vm:\n      disk_size: 21474836480\n    volumes: ["data:/d"]\nvolumes:\n  data:\n    size: 512M\n',
  );
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.project?.vms[0].disk, 20);
  assert.deepEqual(ok.project?.volumes, { data: { size: 1 } });
  assert.deepEqual(ok.warnings, [
    'holos.yaml:9 warning: size 512M (512 MiB) is rounded up to 1 GiB: tend sizes disks and volumes in whole GiB',
  ]);

  const tiny = await load('holos.yaml', 'services:\n  a:\n    image: debian:12\n    vm:\n      disk_size: 100\n');
  assert.deepEqual(tiny.errors, [
    'holos.yaml:5 error: disk_size 100 is 100 bytes: in a holos.yaml a bare number is bytes (as in holos), and the smallest size is 1 MiB (did you mean disk_size: 100G?)',
  ]);
  // the same file named tend.yaml: GiB, as tend reads it
  assert.equal(
    (await load('tend.yaml', 'services:\n  a:\n    image: debian:12\n    vm:\n      disk_size: 100\n')).project?.vms[0].disk,
    100,
  );
});

test('an absurd size is an error with the value the user probably meant, in every dialect', async () => {
  const yaml = await load('tend.yaml', 'services:\n  a:\n    image: debian:12\n    vm:\n      disk_size: 10737418240\n');
  assert.deepEqual(yaml.errors, [
    'tend.yaml:5 error: disk_size 10737418240 GiB is more than any disk can be (10240 PiB) (did you mean 10737418240 bytes (10 GiB)? write disk_size: 10G)',
  ]);
  const kdl = await load('VMFile.kdl', 'vm "a" {\n    image "debian:12"\n    disk 10737418240\n}\n');
  assert.deepEqual(kdl.errors, [
    'VMFile.kdl:3 error: disk 10737418240 GiB is more than any disk can be (10240 PiB) (did you mean 10737418240 bytes (10 GiB)? write disk 10)',
  ]);
  assert.deepEqual((await load('VMFile.kdl', 'vm "a" {\n    image "debian:12"\n    disk 2048\n}\n')).errors, []);
});

test('replicas with a fixed host port: replica i gets port + i (holos), shown in plan; overflow and collisions are errors', async () => {
  const r = await load(
    'holos.yaml',
    'name: shop\nservices:\n  web:\n    image: debian:12\n    replicas: 3\n    ports:\n      - "8080:80"\n      - "9000:443"\n',
  );
  assert.deepEqual(r.errors, []);
  const ports = (n: string) => r.project?.vms.find((v) => v.name === n)?.ports.map((p) => `${p.hostPort}:${p.guestPort}`);
  assert.deepEqual(ports('web-0'), ['8080:80', '9000:443']);
  assert.deepEqual(ports('web-1'), ['8081:80', '9001:443']);
  assert.deepEqual(ports('web-2'), ['8082:80', '9002:443']);
  const p = await planCommand({
    file: [join(r.dir, 'holos.yaml')],
    cwd: r.dir,
    env: { HOME: r.dir, TEND_STATE_DIR: join(r.dir, 's') },
    backend: new MemoryBackend(),
  });
  assert.match(
    p.entries.find((e) => e.vm === 'web-2')?.notes.join('; ') ?? '',
    /host port 8082 → guest 80 \(8080 \+ replica 2, as holos does\)/,
  );

  const clash = await load(
    'tend.yaml',
    'services:\n  web:\n    image: debian:12\n    replicas: 2\n    ports:\n      - "8080:80"\n      - "8081:81"\n',
  );
  assert.deepEqual(clash.errors, [
    'tend.yaml:7 error: service web has 2 replicas, so host ports 8080 and 8081 collide: replica 1 of 8080 gets 8081 (replica i gets host port + i (as in holos): keep fixed host ports at least 2 apart)',
  ]);
});

test('a holos.yaml forwards TCP only, as holos does; tend.yaml forwards UDP', async () => {
  assert.deepEqual((await load('holos.yaml', 'services:\n  dns:\n    image: debian:12\n    ports: ["53:53/udp"]\n')).errors, [
    'holos.yaml:4 error: "53:53/udp": a holos.yaml forwards TCP only (as holos does) (rename the file to tend.yaml to forward UDP too)',
  ]);
  assert.deepEqual((await load('tend.yaml', 'services:\n  dns:\n    image: debian:12\n    ports: ["53:53/udp"]\n')).errors, []);
});

test('dockerfile: FROM is the image, its steps come first, runcmd after them; a bad instruction is an error at its Dockerfile line', async () => {
  const r = await load(
    'holos.yaml',
    'services:\n  app:\n    dockerfile: ./Dockerfile\n    cloud_init:\n      runcmd: ["systemctl restart nginx"]\n    provision:\n      - shell: echo last\n',
    {
      Dockerfile: 'FROM ubuntu:noble\nRUN apt-get install -y nginx\nCOPY site.conf /etc/nginx/sites-enabled/\n',
      'site.conf': 'server {}\n',
    },
  );
  assert.deepEqual(r.errors, []);
  const vm = r.project?.vms[0];
  assert.deepEqual([vm?.image.kind, vm?.image.ref], ['catalog', 'ubuntu:noble']);
  assert.deepEqual(vm?.cloudInit?.runcmd, []);
  assert.deepEqual(
    vm?.provision.map((s) => ('inline' in s ? s.inline[0] : 'source' in s ? `file ${s.destination}` : 'script')),
    [
      '# Dockerfile:2 RUN apt-get install -y nginx',
      'file /etc/nginx/sites-enabled/site.conf',
      '# cloud_init.runcmd, after the Dockerfile (as holos runs it)',
      'echo last',
    ],
  );
  // image: wins over FROM (holos: FROM is used only when image is omitted)
  const both = await load('holos.yaml', 'services:\n  app:\n    image: debian:12\n    dockerfile: ./Dockerfile\n', {
    Dockerfile: 'FROM ubuntu:noble\n',
  });
  assert.equal(both.project?.vms[0].image.ref, 'debian:12');

  const bad = await load('holos.yaml', 'services:\n  app:\n    dockerfile: ./Dockerfile\n', {
    Dockerfile: 'FROM ubuntu:noble\nEXPOSE 80\nFROM ./nope.qcow2\n',
  });
  assert.deepEqual(bad.errors, [
    'Dockerfile:2 error: Dockerfile EXPOSE cannot apply to a VM (publish ports in the compose file: `ports: ["8080:80"]`)',
    'Dockerfile:3 error: a multi-stage Dockerfile (a second FROM) cannot provision one VM (keep one stage: the VM is the image FROM names)',
  ]);
  const missing = await load('holos.yaml', 'services:\n  app:\n    dockerfile: ./Dockerfile\n');
  assert.match(missing.errors.join('\n'), /^holos\.yaml:3 error: the Dockerfile "\.\/Dockerfile" does not exist/);
  const noImage = await load('holos.yaml', 'services:\n  app:\n    replicas: 1\n');
  assert.match(noImage.errors.join('\n'), /holos\.yaml:2 error: service app has no `image`/);
});

test('VMFile.kdl: the property form network "tap" bridge="br0" (what vmctl parses) next to the block form', async () => {
  const prop = await load('VMFile.kdl', 'vm "a" {\n    image "debian:12"\n    network "tap" bridge="br1"\n}\n');
  assert.deepEqual(prop.errors, []);
  assert.deepEqual(prop.project?.vms[0].network, { mode: 'tap', bridge: 'br1' });
  const block = await load('VMFile.kdl', 'vm "a" {\n    image "debian:12"\n    network "tap" {\n        bridge "br2"\n    }\n}\n');
  assert.deepEqual(block.project?.vms[0].network, { mode: 'tap', bridge: 'br2' });
  assert.deepEqual((await load('VMFile.kdl', 'vm "a" {\n    image "debian:12"\n    network "user" bridge="br0"\n}\n')).errors, [
    'VMFile.kdl:3 error: network "user" takes no bridge (only "tap" has a bridge) (write network "user")',
  ]);
  assert.deepEqual((await load('VMFile.kdl', 'vm "a" {\n    image "debian:12"\n    network "tap" speed="fast"\n}\n')).errors.length, 1);
});

test('VMFile.kdl: cloud-init user-data next to ssh-key, package or runcmd is the error tend.yaml gives', async () => {
  const r = await load(
    'VMFile.kdl',
    'vm "a" {\n    image "debian:12"\n    cloud-init {\n        hostname "a"\n        ssh-key "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq4 me"\n        package "nginx"\n        user-data "ud.yaml"\n    }\n}\n',
    {
      'ud.yaml': '#cloud-config\n',
    },
  );
  assert.deepEqual(r.errors, [
    'VMFile.kdl:7 error: user-data is used as is, so `ssh-key`, `package` in the same cloud-init would be ignored (put everything in the user-data file, or drop user-data and use the nodes)',
  ]);
  assert.deepEqual(
    (
      await load(
        'VMFile.kdl',
        'vm "a" {\n    image "debian:12"\n    cloud-init {\n        hostname "a"\n        user-data "ud.yaml"\n    }\n}\n',
        { 'ud.yaml': '#cloud-config\n' },
      )
    ).errors,
    [],
  );
});
