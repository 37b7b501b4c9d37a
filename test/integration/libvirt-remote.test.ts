/**
 * The remote-host plumbing without a guest: a loopback sshd for root (its own port, host key and
 * client key) stands for the libvirt host, and also for the "guest" behind it (the jump forwards
 * to 127.0.0.1:PORT as seen from the host, which is that same sshd).
 *   - tend's SSH jump checks the host's key as OpenSSH does: known -> connects; absent ->
 *     HostKeyUnknown; another key -> HostKeyChanged; no_verify=1 -> connects;
 *   - a banner read and a command through the jump (what readiness and exec do);
 *   - `tend doctor` for the remote URI: libvirt answers over SSH, the jump works, the pool works;
 *   - named volumes of a remote VM are qcow2 volumes of the host's pool: made once with the
 *     project's size, listed by `volume ls`'s backend call, removed by `down --volumes`'s;
 *   - UEFI on a remote host: the host's libvirt picks OVMF (firmware autoselection) and makes the
 *     VM's variable store; the domain runs its firmware (an empty disk: no guest needed) and
 *     destroy leaves no NVRAM file, no domain and no VM volume; `tend console`'s backend call
 *     reaches that firmware's serial console through the host (virsh console in a pty over SSH).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';
import { connectJump, jumpOf, jumpProxyCommand } from '../../src/ssh/jump.js';
import { readSshBanner } from '../../src/ssh/ready.js';
import { sshExec } from '../../src/ssh/exec.js';
import { libvirtDoctor, renderLibvirtDoctor } from '../../src/libvirt/doctor.js';
import { rejectsWith } from '../helpers/rejects.js';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { createLibvirtBackend } from '../../src/libvirt/backend.js';
import { createVirsh } from '../../src/libvirt/virsh.js';
import { domainName } from '../../src/libvirt/names.js';
import { existsSync } from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { ensurePool } from '../../src/libvirt/pool.js';
import { ensureRemoteVolumes } from '../../src/libvirt/remote-files.js';
import { remoteVolumeName } from '../../src/libvirt/names.js';

let sshd: TestSshd;
let knownHosts: string;
let uri: string;
let poolBefore = false;

const virsh = (...args: string[]) => execa('virsh', ['-q', '-c', 'qemu:///system', ...args], { reject: false, stdin: 'ignore' });

before(async () => {
  sshd = await startTestSshd();
  const hostPub = (await readFile(join(sshd.dir, 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  knownHosts = join(sshd.dir, 'known_hosts');
  await writeFile(
    knownHosts,
    `# a comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFake\n[127.0.0.1]:${sshd.port} ${hostPub}\n`,
  );
  uri = `qemu+libssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.key}&known_hosts=${knownHosts}&sshauth=privkey`;
  poolBefore = (await virsh('pool-info', 'tend')).exitCode === 0;
});

after(async () => {
  if (!poolBefore) {
    await virsh('pool-destroy', 'tend');
    await virsh('pool-undefine', 'tend');
  }
  await sshd.dispose();
});

test('the jump checks the host key against known_hosts (trusted, unknown, changed, no_verify)', async () => {
  const j = jumpOf(uri);
  assert.ok(j);
  assert.equal(j.label, `root@127.0.0.1:${sshd.port}`);
  const c = await connectJump(j);
  c.end();

  const empty = join(sshd.dir, 'empty_known_hosts');
  await writeFile(empty, '');
  await assert.rejects(connectJump({ ...j, knownHosts: empty }), rejectsWith('HostKeyUnknown', /not in .*empty_known_hosts.*ssh-keyscan/));

  const other = join(sshd.dir, 'other_known_hosts');
  const otherPub = (await readFile(`${sshd.wrongKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(other, `[127.0.0.1]:${sshd.port} ${otherPub}\n`);
  await assert.rejects(connectJump({ ...j, knownHosts: other }), rejectsWith('HostKeyChanged', /different ssh-ed25519 key/));

  const nv = jumpOf(`qemu+ssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.key}&known_hosts=${other}&no_verify=1`);
  assert.ok(nv?.noVerify);
  (await connectJump(nv)).end();

  await assert.rejects(connectJump({ ...j, keyfile: sshd.wrongKey }), rejectsWith('SshAuthFailed', /refused every key/));
});

test('a banner and a command reach 127.0.0.1:PORT as seen from the host, through the jump', async () => {
  const j = jumpOf(uri);
  assert.ok(j);
  assert.match(await readSshBanner('127.0.0.1', sshd.port, 10_000, undefined, j), /^SSH-2\.0-OpenSSH/);
  const r = await sshExec({ host: '127.0.0.1', port: sshd.port, user: sshd.user, privateKey: sshd.key, jump: j, command: 'echo through' });
  assert.deepEqual([r.code, r.stdout.trim()], [0, 'through']);
  // tend ssh's hop for the system ssh: the URI's key and known_hosts, the host after "--"
  assert.equal(
    jumpProxyCommand(j),
    `ssh -W %h:%p -p ${sshd.port} -l root -i ${sshd.key} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -- 127.0.0.1`,
  );
  const viaSystemSsh = await execa(
    'ssh',
    [
      '-o',
      `ProxyCommand=${jumpProxyCommand(j)}`,
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      `HostKeyAlias=[127.0.0.1]:${sshd.port}`,
      '-o',
      'BatchMode=yes',
      '-i',
      sshd.key,
      '-p',
      String(sshd.port),
      '-l',
      sshd.user,
      '--',
      '127.0.0.1',
      'echo system-ssh',
    ],
    { reject: false, stdin: 'ignore' },
  );
  assert.equal(viaSystemSsh.stdout.trim(), 'system-ssh', viaSystemSsh.stderr);
});

test('tend doctor on the remote URI: libvirt over SSH, the jump and the pool work', { timeout: 120_000 }, async () => {
  // the pool exists once a VM was prepared there; doctor tests it with a volume it creates and deletes
  await virsh('pool-define-as', 'tend', 'dir', '--target', '/var/lib/libvirt/tend');
  await virsh('pool-build', 'tend');
  await virsh('pool-start', 'tend');
  const { report, problems } = await libvirtDoctor(uri, { required: true });
  assert.deepEqual(problems, []);
  assert.equal(report.answers, true, report.error ?? '');
  assert.ok(report.remote);
  assert.equal(report.remote.ssh, null);
  assert.equal(report.remote.pool, '/var/lib/libvirt/tend');
  assert.equal(report.remote.poolError, null);
  const text = renderLibvirtDoctor(report).join('\n');
  assert.match(text, /ssh jump: +root@127\.0\.0\.1:\d+: works/);
  assert.match(text, /pool: +"tend" at \/var\/lib\/libvirt\/tend: works/);

  // a host that does not know the key: doctor says so, as a problem
  const empty = join(sshd.dir, 'empty2');
  await writeFile(empty, '');
  const bad = await libvirtDoctor(uri.replace(knownHosts, empty), { required: true });
  assert.equal(bad.report.answers, false);
  assert.ok(
    bad.problems.some((p) => /not in .*empty2/.test(p)),
    bad.problems.join('\n'),
  );
});

test("named volumes of a remote VM live in the host's pool: made once, listed, removed", { timeout: 120_000 }, async () => {
  const vm = applyDefaults({
    name: 'web',
    image: { kind: 'path', ref: '/img.qcow2' },
    volumes: [{ kind: 'named', name: 'data', target: '/data', readOnly: false }],
  } as VmDraft);
  const project: Project = { name: 'voltest', dir: join(sshd.dir, 'voltest'), files: [], vms: [vm], volumes: { data: { size: 1 } } };
  const vol = remoteVolumeName(project, 'data');
  const remote = createVirsh({ uri });
  const backend = createLibvirtBackend({ stateRoot: join(sshd.dir, 'state'), uri });
  try {
    const poolDir = await ensurePool(remote);
    await ensureRemoteVolumes(remote, project, vm);
    const file = `${poolDir}/${vol}`;
    const info = await execa('qemu-img', ['info', '--output=json', '-U', file]);
    const img = JSON.parse(info.stdout) as { format: string; 'virtual-size': number };
    assert.deepEqual([img.format, img['virtual-size']], ['qcow2', 1024 ** 3], "a qcow2 volume of the project's size");
    const inode = (await execa('stat', ['-c', '%i', file])).stdout;
    await ensureRemoteVolumes(remote, project, vm);
    assert.equal((await execa('stat', ['-c', '%i', file])).stdout, inode, 'an existing volume is kept, never made again');

    const listed = await backend.listVolumes!(project);
    assert.deepEqual(
      listed.map((v) => [v.name, v.virtualSize, v.path]),
      [['data', 1024 ** 3, `${uri} ${file}`]],
    );
    assert.equal(backend.volumePath!(project, 'data'), `${uri} ${file}`);
    await backend.removeVolumes!(project, ['data']);
    assert.deepEqual(await backend.listVolumes!(project), []);
    assert.notEqual((await virsh('vol-info', '--pool', 'tend', vol)).exitCode, 0, 'the volume is gone from the pool');
  } finally {
    await virsh('vol-delete', '--pool', 'tend', vol);
    backend.close();
  }
});

test(
  "UEFI on a remote host: the host's libvirt picks OVMF and keeps the variable store; destroy removes it",
  { timeout: 300_000 },
  async () => {
    const image = join(sshd.dir, 'empty-uefi.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    const vm = applyDefaults({
      name: 'efi',
      image: { kind: 'path', ref: image },
      firmware: 'uefi',
      accel: 'tcg',
      memory: 256,
      cpus: 1,
    } as VmDraft);
    const project: Project = { name: 'uefitest', dir: join(sshd.dir, 'uefitest'), files: [], vms: [vm], volumes: {} };
    const dom = domainName(project, 'efi');
    const stateRoot = join(sshd.dir, 'state-uefi');
    // qemu+ssh: virsh over qemu+libssh segfaults on a running domain's dumpxml (libvirt 9.0, the e2e's note)
    const sshUri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.key}&no_verify=1`;
    const backend = createLibvirtBackend({ stateRoot, uri: sshUri });
    try {
      await backend.prepare(project, vm, { recreateDisk: false });
      assert.ok(
        !existsSync(join(stateRoot, 'projects')) || !(await execa('find', [stateRoot, '-name', 'efi-vars.fd'])).stdout,
        'no local variable store',
      );
      await backend.start(project, vm);
      assert.equal((await virsh('domstate', dom)).stdout.trim(), 'running');
      const live = (await virsh('dumpxml', dom)).stdout;
      const loader = /<loader[^>]*>([^<]+)<\/loader>/.exec(live)?.[1] ?? '';
      const nvram = /<nvram[^>]*>([^<]+)<\/nvram>/.exec(live)?.[1] ?? '';

      // tend console on the remote host: the firmware's own output on the serial console, typed
      // input reaches it (the UEFI shell answers `ver`), Ctrl-] detaches
      const input = new PassThrough();
      let seen = '';
      const output = new Writable({
        write(chunk: Buffer, _e, cb) {
          seen += chunk.toString('latin1');
          cb();
        },
      });
      let attached = false;
      const session = backend.attachConsole!(project, 'efi', { input, output, onAttached: () => (attached = true) });
      const until = async (re: RegExp, ms: number, poke?: string): Promise<boolean> => {
        for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 1000))) {
          if (re.test(seen)) return true;
          if (poke && attached) input.write(poke);
        }
        return re.test(seen);
      };
      assert.ok(await until(/Shell>/, 120_000, '\r'), `the UEFI shell's prompt on the console:\n${seen.slice(-2000)}`);
      seen = '';
      input.write('ver\r');
      assert.ok(await until(/UEFI/, 30_000), `the shell answered ver:\n${seen}`);
      assert.doesNotMatch(seen, /Escape character/, "virsh's greeting is not shown");
      input.write(Buffer.from([0x1d]));
      assert.equal(await session, 'detached');
      assert.match(loader, /OVMF/, `the host's libvirt chose an OVMF loader:\n${live}`);
      assert.doesNotMatch(loader, /secboot|\.ms\./, 'uefi (not uefi-secure): a firmware without Secure Boot');
      assert.ok(nvram && existsSync(nvram), `the host made the VM's variable store (${nvram})`);
      await backend.destroy(project, 'efi');
      assert.notEqual((await virsh('domstate', dom)).exitCode, 0, 'the domain is gone');
      assert.ok(!existsSync(nvram), `destroy removed the variable store ${nvram}`);
      await virsh('pool-refresh', 'tend');
      assert.ok(!(await virsh('vol-list', 'tend')).stdout.includes(dom), 'no volume of the VM is left');
    } finally {
      await virsh('destroy', dom);
      await virsh('undefine', dom, '--nvram');
      for (const k of ['disk', 'seed', 'console'])
        await virsh('vol-delete', '--pool', 'tend', `${dom}-${k}${k === 'disk' ? '.qcow2' : k === 'seed' ? '.iso' : '.log'}`);
      for (const line of (await virsh('vol-list', 'tend')).stdout.split('\n')) {
        const name = line.trim().split(/\s+/)[0];
        // the tiny base this test uploaded (its own sha256 prefix; a real image's base is never 64M of zeros)
        if (name?.startsWith('base-') && line.includes(name)) {
          const cap = (await virsh('vol-info', '--pool', 'tend', name, '--bytes')).stdout;
          if (/Capacity:\s+67108864\b/.test(cap)) await virsh('vol-delete', '--pool', 'tend', name);
        }
      }
      backend.close();
    }
  },
);
