/**
 * A VM on a *remote* libvirt host, end to end, with one boot of the real Debian 12 guest. The
 * "remote" host is this machine's own libvirtd reached over SSH: a loopback sshd for root on
 * 127.0.0.1 (its own port, host key and client key; test/helpers/sshd.ts), so the URI is
 * `qemu+ssh://root@127.0.0.1:PORT/system?keyfile=K&no_verify=1`: libvirt's OpenSSH transport
 * ignores known_hosts, so host keys are not checked here (tend honours no_verify too); the
 * known_hosts checks are test/integration/libvirt-remote.test.ts's. `qemu+libssh` (which honours
 * known_hosts) made libvirt 9.0's virsh segfault on the running domain's dumpxml (dmesg), twice.
 *   - `tend up` uploads the base image into the pool `tend` (the volume exists), makes the disk an
 *     overlay volume backed by it, and reaches Ready through the jump; a second `up` does not
 *     upload again (the volume's file is unchanged);
 *   - `tend exec NAME -- hostname` runs through the jump, `tend ssh` through the system ssh's
 *     ProxyCommand; `tend logs --console` copies the console log from the pool; `tend ps` shows the host;
 *   - the exit-watch `tend watch` uses, on the remote URI: a `virsh destroy` is reported within 5 s;
 *   - a named volume is a qcow2 volume in the pool, mounted in the guest, shown by `volume inspect`;
 *   - `tend down --destroy` leaves no domain and no VM volume (the shared base and the named
 *     volume stay); `down --volumes` removes the named volume.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { findImage, runCli, tempProject, type TempProject } from './helpers.js';
import { startTestSshd } from '../helpers/sshd.js';
import { domainName, remoteVolumeName } from '../../src/libvirt/names.js';
import { baseVolumeName, POOL_NAME, vmVolumeName } from '../../src/libvirt/pool.js';
import { createLibvirtBackend } from '../../src/libvirt/backend.js';
import type { VmExit } from '../../schemas/ports.js';

const LOCAL = 'qemu:///system';

const virsh = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
  const r = await execa('virsh', ['-q', '-c', LOCAL, ...args], { reject: false, stdin: 'ignore' });
  return { code: r.exitCode ?? -1, out: String(r.stdout).trim(), err: String(r.stderr).trim() };
};

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Runs tend, asserts exit 0; stdout (with `all`: stdout and stderr, where progress goes). */
async function ok(p: TempProject, args: string[], all = false): Promise<string> {
  const t0 = Date.now();
  const r = await runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 900_000 });
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  process.stderr.write(`# tend ${args.join(' ')}: ${Date.now() - t0} ms\n`);
  return all ? `${r.stdout}\n${r.stderr}` : r.stdout;
}

test(
  'a VM on a remote libvirt host over SSH: upload once, Ready and exec through the jump, ps HOST, down --destroy',
  { timeout: 2_400_000 },
  async (t) => {
    const v = await virsh('version');
    assert.equal(v.code, 0, `libvirtd must answer on ${LOCAL} (.ci/run starts it: scripts/libvirt-daemons.sh): ${v.err}`);
    const image = await findImage();
    const sshd = await startTestSshd();
    const hostPub = (await readFile(join(sshd.dir, 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const knownHosts = join(sshd.dir, 'known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${sshd.port} ${hostPub}\n`);
    // qemu+ssh (OpenSSH) ignores known_hosts: no_verify=1 (host keys: test/integration/libvirt-remote.test.ts)
    const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.key}&no_verify=1`;
    // compose form (vms.yml has no named volumes; its libvirt path is libvirt.test.ts's)
    const p = await tempProject({
      'tend.yaml': [
        'services:',
        '  rweb:',
        `    image: ${image}`,
        '    vm: {memory_mb: 512, vcpu: 1}',
        '    accel: tcg',
        '    backend: libvirt',
        `    connect: "${uri}"`,
        '    cloud_init: {hostname: rweb}',
        '    volumes: ["rdata:/data"]',
        'volumes:',
        '  rdata: {size: 1G}',
        '',
      ].join('\n'),
    });
    const project = { name: p.dir.split('/').pop() ?? '', dir: p.dir };
    const poolBefore = (await virsh('pool-info', POOL_NAME)).code === 0;
    const base = baseVolumeName(await sha256(image), 'qcow2');
    let dom = '';
    t.after(async () => {
      if (dom) {
        await virsh('destroy', dom);
        await virsh('undefine', dom);
        for (const k of ['disk', 'seed', 'console'] as const) await virsh('vol-delete', '--pool', POOL_NAME, vmVolumeName(dom, k));
        await virsh('vol-delete', '--pool', POOL_NAME, remoteVolumeName(project, 'rdata'));
      }
      await virsh('vol-delete', '--pool', POOL_NAME, base);
      if (!poolBefore) {
        await virsh('pool-destroy', POOL_NAME);
        await virsh('pool-undefine', POOL_NAME);
      }
      await sshd.dispose();
      await p.cleanup();
    });
    // the upload is what is tested: no base volume left by an earlier run
    await virsh('pool-refresh', POOL_NAME);
    await virsh('vol-delete', '--pool', POOL_NAME, base);

    // up: uploads the base into the pool, Ready through the jump
    const up1 = await ok(p, ['up'], true);
    const ps0 = JSON.parse(await runCli(['ps', '--json'], { cwd: p.dir, stateDir: p.stateDir }).then((r) => r.stdout)) as {
      project: string;
      vms: { name: string; host: string; state: string; ready: boolean; pid: number | null }[];
    };
    project.name = ps0.project;
    dom = domainName(project, 'rweb');
    assert.equal((await virsh('domstate', dom)).out, 'running', `domain ${dom} runs\n${up1}`);
    await virsh('pool-refresh', POOL_NAME);
    const basePath = (await virsh('vol-path', '--pool', POOL_NAME, base)).out;
    assert.ok(basePath.startsWith('/'), `the base image is a volume ${base} in pool ${POOL_NAME}\n${up1}`);
    const diskXml = (await virsh('vol-dumpxml', '--pool', POOL_NAME, vmVolumeName(dom, 'disk'))).out;
    assert.match(diskXml, /<format type='qcow2'\/>/, 'the disk is a qcow2 volume');
    assert.ok(diskXml.includes(`<path>${basePath}</path>`), `the disk is backed by the base volume:\n${diskXml}`);
    const domXml = (await virsh('dumpxml', dom)).out;
    assert.ok(
      domXml.includes(vmVolumeName(dom, 'disk')) && domXml.includes(vmVolumeName(dom, 'seed')),
      'the domain boots the pool volumes',
    );
    const stat = async (): Promise<string> => (await execa('stat', ['-c', '%i %Y %s', basePath])).stdout;
    const before = await stat();
    assert.equal(before.split(' ')[2], String((await execa('stat', ['-c', '%s', image])).stdout), 'the whole image was uploaded');

    // through the jump: exec, and ps shows the host
    assert.equal((await ok(p, ['exec', 'rweb', '--', 'hostname'])).trim(), 'rweb');
    // the named volume is a qcow2 volume of the host's pool, formatted and mounted in the guest
    const volName = remoteVolumeName(project, 'rdata');
    const volPath = (await virsh('vol-path', '--pool', POOL_NAME, volName)).out;
    assert.ok(domXml.includes(volPath), `the domain mounts the pool volume ${volName}:\n${domXml}`);
    await ok(p, ['exec', 'rweb', '--', 'sh', '-c', 'mountpoint -q /data && echo kept | sudo tee /data/mark']);
    const vi = await ok(p, ['volume', 'inspect', 'rdata']);
    assert.ok(vi.includes(`path:        ${uri} ${volPath}`), `volume inspect says where it is:\n${vi}`);
    const ps = JSON.parse(await runCli(['ps', '--json'], { cwd: p.dir, stateDir: p.stateDir }).then((r) => r.stdout)) as typeof ps0;
    const row = ps.vms.find((x) => x.name === 'rweb');
    assert.equal(row?.host, `127.0.0.1:${sshd.port}`);
    assert.equal(row?.state, 'running');
    assert.equal(row?.ready, true, 'Ready is recorded for the remote domain');
    assert.equal(row?.pid, null, 'no local PID for a VM of another host (its domain id is not a process here)');
    const st = JSON.parse(await ok(p, ['status', 'rweb', '--json'])) as { observed: { pid: number | null } };
    assert.equal(st.observed.pid, null);
    const table = await ok(p, ['ps']);
    assert.match(table, /NAME\s+STATE\s.*\sCONDITIONS\s+HOST\n/);
    assert.match(table, new RegExp(`\\nrweb\\s+running\\s+yes\\s.*\\s127\\.0\\.0\\.1:${sshd.port}\\s*(?:\\n|$)`));

    // the system ssh through the same hop (ProxyCommand), and the console log from the host's pool
    assert.equal((await ok(p, ['ssh', 'rweb', '--', 'hostname'])).trim(), 'rweb');
    assert.match(await ok(p, ['logs', 'rweb', '--console']), /Linux version|Debian/, 'the serial console log comes from the pool');

    // a second up: converged, nothing uploaded again
    const up2 = await ok(p, ['up'], true);
    assert.doesNotMatch(up2, /uploading/, 'the second up uploads nothing');
    assert.equal(await stat(), before, 'the base volume is the same file');

    // tend watch's exit-watch on the remote URI: libvirt's events (virsh -c URI event --loop) report
    // a `virsh destroy` behind tend's back as a failure within a second
    const backend = createLibvirtBackend({ stateRoot: p.stateDir, uri });
    try {
      const domid = Number((await virsh('domid', dom)).out);
      const exited = new Promise<VmExit>((resolve) =>
        backend.watchExit?.({ ...project, volumes: {}, files: [], vms: [] }, 'rweb', domid, resolve),
      );
      await new Promise((r) => setTimeout(r, 3000)); // the event stream connects over SSH
      const t0 = Date.now();
      assert.equal((await virsh('destroy', dom)).code, 0);
      const e = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
      const ms = Date.now() - t0;
      assert.equal(e?.kind, 'failure', 'the destroy is reported as a failure');
      t.diagnostic(`virsh destroy -> exit reported over ${uri.split(':')[0]}: ${ms} ms`);
      // the event crosses the SSH transport: 1.6 s measured here under load (local: < 1 s, libvirt.test.ts)
      assert.ok(ms < 5000, `exit reported ${ms} ms after virsh destroy returned`);
    } finally {
      backend.close();
    }

    // down --destroy: no domain, no VM volume; the named volume stays (it outlives VMs) until --volumes
    await ok(p, ['down', '--destroy']);
    await virsh('pool-refresh', POOL_NAME);
    assert.equal((await virsh('vol-info', '--pool', POOL_NAME, volName)).code, 0, 'the named volume outlives the VM');
    await ok(p, ['down', '--volumes']);
    await virsh('pool-refresh', POOL_NAME);
    assert.notEqual((await virsh('vol-info', '--pool', POOL_NAME, volName)).code, 0, 'down --volumes removes it from the pool');
    assert.notEqual((await virsh('domstate', dom)).code, 0, `domain ${dom} is gone`);
    await virsh('pool-refresh', POOL_NAME);
    const vols = (await virsh('vol-list', POOL_NAME)).out;
    assert.ok(!vols.includes(dom), `no volume of ${dom} is left:\n${vols}`);
    assert.ok(vols.includes(base), `the shared base stays:\n${vols}`);
  },
);
