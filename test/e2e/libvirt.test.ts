/**
 * End to end through the real libvirtd (qemu:///system; .ci/run starts it) on the real Debian 12
 * guest image, one project with one VM pinned to `backend: libvirt`, as few boots as possible
 * (three: the first `up`, the cold boot after a memory edit, the restart after a `virsh destroy`):
 *   - `tend up` reaches Ready with the VM as a libvirt domain; `exec` works;
 *   - warm clones (no boot): the VM is `warm`, so its first Ready keeps a libvirt template; a VM
 *     of a second project with the same settings starts from it (`virsh restore` of a save image
 *     tend writes) in seconds, with its own hostname, machine-id, SSH host key and instance-id,
 *     `exec` works, its writes are its own (the first VM's later files are not on it and the other
 *     way round), the template's disk stays read-only and unwritten; `image templates` lists it;
 *     `stop --save` and `up` of the clone restore it (managed save); `down --destroy` of the clone
 *     leaves no domain or disk; `image prune` then removes the template;
 *   - `tend stop --save` (virsh managedsave): `ps` says saved, `status` its size; `tend up` restores
 *     it in seconds: a process started before the save runs on (same PID, same boot, its counter
 *     goes on) and the guest clock is within 2 s of the host's;
 *   - `tend snapshot save/ls/restore/rm` on the running VM: a file changed after the snapshot is
 *     back as it was, a new one gone, the clock within 2 s;
 *   - saved again, then a memory edit (and a host folder added): `tend up` discards the state with
 *     the line saying why and cold-boots with the new memory, disk kept; the host folder is shared
 *     over virtiofs (libvirt starts virtiofsd; shared memfd memory) both ways; a save libvirt
 *     refuses (virtiofs cannot migrate) leaves the VM running;
 *   - `virsh destroy` behind tend's back: watch begins the restart within a second (libvirt's own
 *     lifecycle event) and the VM is Ready again, disk kept;
 *   - `tend down --destroy` leaves no domain, no VM folder (disk, seed, keys), no NVRAM file and no
 *     managed save.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { findImage, runCli, spawnWatch, tempProject, type TempProject } from './helpers.js';
import { domainName } from '../../src/libvirt/names.js';
import { projectDir, vmFile } from '../../src/state/paths.js';

const URI = 'qemu:///system';

interface Event {
  time: string;
  reason: string;
  vm?: string;
  message: string;
}

const virsh = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
  const r = await execa('virsh', ['-q', '-c', URI, ...args], { reject: false });
  return { code: r.exitCode ?? -1, out: String(r.stdout).trim(), err: String(r.stderr).trim() };
};

async function run(p: TempProject, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 900_000 });
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const ok = async (p: TempProject, args: string[]): Promise<string> => (await run(p, args)).stdout;
/** stdout and stderr (progress and event lines) */
const both = async (p: TempProject, args: string[]): Promise<string> => {
  const r = await run(p, args);
  return r.stdout + r.stderr;
};

const yaml = (image: string, memory: number, share: boolean, vm = { project: 'lvirt', name: 'web', hostname: 'lvweb' }) =>
  [
    `name: ${vm.project}`,
    'services:',
    `  ${vm.name}:`,
    `    image: ${image}`,
    '    backend: libvirt',
    `    connect: ${URI}`,
    // warm: the first Ready of its fresh disk keeps a template (and a clone starts from one)
    '    warm: true',
    `    vm: { vcpu: 1, memory_mb: ${memory} }`,
    ...(share ? ['    volumes: ["./share:/srv/share"]'] : []),
    `    cloud_init: { hostname: ${vm.hostname} }`,
    '',
  ].join('\n');

test(
  "a VM on backend libvirt: up, exec, a warm clone of it, stop --save and restore, memory edit, destroy behind tend's back, down --destroy",
  { timeout: 2_400_000 },
  async (t) => {
    const v = await virsh('version');
    assert.equal(v.code, 0, `libvirtd must answer on ${URI} (.ci/run starts it: scripts/libvirt-daemons.sh): ${v.err}`);
    const image = await findImage();
    const p = await tempProject({ 'tend.yaml': yaml(image, 512, false), 'share/hello.txt': 'from the host\n' });
    const project = { name: 'lvirt', dir: p.dir };
    const dom = domainName(project, 'web');
    const stateFile = `/var/lib/libvirt/qemu/save/${dom}.save`;
    t.after(async () => {
      await virsh('destroy', dom);
      await virsh('undefine', dom, '--nvram', '--managed-save');
      await p.cleanup();
    });
    const sh = async (script: string): Promise<string> => (await ok(p, ['exec', 'web', '--', 'sh', '-c', script])).trim();
    const psState = async (): Promise<string | undefined> =>
      (JSON.parse(await ok(p, ['ps', '--json'])) as { vms: { name: string; state: string }[] }).vms.find((x) => x.name === 'web')?.state;

    // up: Ready, as a libvirt domain
    await ok(p, ['up']);
    assert.equal((await virsh('domstate', dom)).out, 'running', `domain ${dom} runs`);
    assert.equal((await ok(p, ['exec', 'web', '--', 'hostname'])).trim(), 'lvweb');
    // the guest's NIC: the same MAC at every start (a new one made the guest wait minutes for DHCP)
    const mac = async (): Promise<string> => (await ok(p, ['exec', 'web', '--', 'cat', '/sys/class/net/eth0/address'])).trim();
    const mac0 = await mac();
    await ok(p, ['exec', 'web', '--', 'sh', '-c', 'echo kept > ~/marker && sync']);
    assert.equal(await psState(), 'running');

    // warm clones: web's first Ready kept a libvirt template; twin (another project, the same
    // settings) restores it instead of booting, and makes the guest its own
    {
      const templates = async () =>
        (
          JSON.parse(await ok(p, ['image', 'templates', '--json'])) as {
            templates: { key: string; path: string; from: { project: string; vm: string }; usedBy: string[] }[];
          }
        ).templates;
      const [tpl, ...more] = await templates();
      assert.ok(tpl && more.length === 0, 'one template, kept at the first Ready');
      assert.deepEqual(tpl.from, { project: 'lvirt', vm: 'web' });
      const frozen = join(tpl.path, 'disk.qcow2');
      assert.equal(statSync(frozen).mode & 0o777, 0o400, "the template's disk is read-only");
      const frozenBefore = statSync(frozen);
      const qdir = join(p.scratch, 'twin');
      await mkdir(qdir);
      await writeFile(join(qdir, 'tend.yaml'), yaml(image, 512, false, { project: 'lvtwin', name: 'twin', hostname: 'lvtwin' }));
      const q = { dir: qdir, stateDir: p.stateDir } as TempProject;
      const twinDom = domainName({ name: 'lvtwin', dir: qdir }, 'twin');
      t.after(async () => {
        await virsh('destroy', twinDom);
        await virsh('undefine', twinDom, '--nvram', '--managed-save');
      });
      const tsh = async (vm: TempProject, name: string, script: string): Promise<string> =>
        (await ok(vm, ['exec', name, '--', 'sh', '-c', script])).trim();
      let c0 = Date.now();
      const cloned = await both(q, ['up']);
      t.diagnostic(`tend up of a libvirt warm clone to Ready: ${Date.now() - c0} ms`);
      assert.match(cloned, new RegExp(`creating disk over warm template ${tpl.key}`));
      assert.match(
        cloned,
        new RegExp(`warm clone of template ${tpl.key}: hostname, machine-id, SSH host key and instance-id made its own`),
      );
      assert.doesNotMatch(cloned, /warm template not used|warm clone abandoned/);
      assert.equal((await virsh('domstate', '--reason', twinDom)).out, 'running (restored)', 'restored, not booted');
      const who =
        'hostname; cat /etc/machine-id; cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub; ls /etc/ssh | grep -c "^ssh_host_.*_key$"; cat /var/lib/cloud/data/instance-id';
      const [wHost, wId, wKey, , wIid] = (await tsh(p, 'web', who)).split('\n');
      const [cHost, cId, cKey, cKeys, cIid] = (await tsh(q, 'twin', who)).split('\n');
      assert.equal(wHost, 'lvweb');
      assert.equal(cHost, 'lvtwin', "the clone's own hostname");
      assert.notEqual(cId, wId, 'its own machine-id');
      assert.notEqual(cKey, wKey, 'its own SSH host key');
      assert.equal(cKeys, '1', "the template's host keys are gone");
      assert.notEqual(cIid, wIid, 'its own instance-id');
      assert.equal(
        await tsh(q, 'twin', 'test -e ~/marker && echo there || echo absent'),
        'absent',
        "web's write after the capture is not on the clone",
      );
      await tsh(q, 'twin', 'echo twin > ~/twin-only && sync');
      assert.equal(await tsh(p, 'web', 'test -e ~/twin-only && echo there || echo absent'), 'absent', "the clone's write is not on web");
      // no writable file shared: the clone's disks are its own files, the template's disk is unwritten
      const blk = (await virsh('domblklist', twinDom)).out;
      const twinDir = vmFile(projectDir(p.stateDir, 'lvtwin', qdir), 'twin', 'disk').replace(/\/disk\.qcow2$/, '');
      for (const l of blk.split('\n').filter((x) => /^\s*vd/.test(x))) assert.ok(l.includes(twinDir), `the clone's disk is its own: ${l}`);
      const frozenAfter = statSync(frozen);
      assert.deepEqual(
        [frozenAfter.size, frozenAfter.mtimeMs],
        [frozenBefore.size, frozenBefore.mtimeMs],
        "the template's disk is not written",
      );
      const info = await execa('qemu-img', ['info', '-U', '--output=json', vmFile(projectDir(p.stateDir, 'lvtwin', qdir), 'twin', 'disk')]);
      assert.equal((JSON.parse(info.stdout) as { 'backing-filename'?: string })['backing-filename'], frozen);
      assert.deepEqual((await templates())[0]?.usedBy.length, 1, 'image templates: used by the clone');
      // a saved state of a clone: managed save, restored by up
      await ok(q, ['stop', 'twin', '--save']);
      assert.equal((await virsh('domstate', '--reason', twinDom)).out, 'shut off (saved)');
      c0 = Date.now();
      assert.match(await both(q, ['up']), /restored from its saved state/);
      t.diagnostic(`tend up of the saved clone: ${Date.now() - c0} ms`);
      assert.equal(await tsh(q, 'twin', 'hostname; cat ~/twin-only'), 'lvtwin\ntwin');
      // down --destroy of the clone: nothing of it left; then the template is unused and prune removes it
      await ok(q, ['down', '--destroy']);
      assert.notEqual((await virsh('dominfo', twinDom)).code, 0, 'no clone domain');
      assert.equal(existsSync(vmFile(projectDir(p.stateDir, 'lvtwin', qdir), 'twin', 'disk')), false, 'no clone disk');
      assert.match(await ok(p, ['image', 'prune']), new RegExp(`removed template ${tpl.key}`));
      assert.deepEqual(await templates(), []);
      assert.equal((await ok(p, ['exec', 'web', '--', 'cat', 'marker'])).trim(), 'kept', 'web runs on after all that');
    }
    assert.match((await ok(p, ['plan'])).split('\n').find((l) => l.startsWith('web')) ?? '', /\bnone\b/, 'a converged VM plans nothing');

    // stop --save (virsh managedsave), then up restores it: the guest's processes run on
    const boot0 = await sh('cat /proc/sys/kernel/random/boot_id');
    const pid = await sh(
      "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/counter; sleep 0.2; done' >/dev/null 2>&1 < /dev/null & echo $!",
    );
    assert.match(pid, /^\d+$/);
    await new Promise((r) => setTimeout(r, 1000));
    const before = Number(await sh('cat /dev/shm/counter'));
    assert.ok(before > 0);
    let t0 = Date.now();
    const stopped = await both(p, ['stop', 'web', '--save']);
    t.diagnostic(`tend stop --save: ${Date.now() - t0} ms`);
    assert.equal((await virsh('domstate', '--reason', dom)).out, 'shut off (saved)', 'libvirt holds a managed save');
    assert.match(stopped, /memory saved/);
    assert.equal(await psState(), 'saved');
    const mib = Math.round(statSync(stateFile).size / 1048576);
    assert.match(await ok(p, ['status', 'web']), new RegExp(`Saved state: +${mib} MiB, saved `), "status shows libvirt's file's size");
    await new Promise((r) => setTimeout(r, 5000)); // the guest clock stands still meanwhile
    t0 = Date.now();
    const restored = await both(p, ['up']);
    t.diagnostic(`tend up of the saved VM to Ready: ${Date.now() - t0} ms (${mib} MiB state)`);
    assert.match(restored, /restored from its saved state/);
    assert.match(restored, /guest clock set to the host time/);
    assert.equal((await virsh('domstate', '--reason', dom)).out, 'running (restored)');
    assert.equal(await sh('cat /proc/sys/kernel/random/boot_id'), boot0, 'the same boot');
    assert.equal(await sh(`kill -0 ${pid} && echo alive`), 'alive', 'the process started before the save still runs');
    const after = Number(await sh('cat /dev/shm/counter'));
    assert.ok(after > before, `counter went on (${before} → ${after})`);
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(Number(await sh('cat /dev/shm/counter')) > after, 'and still counts');
    const hostBefore = Date.now() / 1000;
    const guest = Number(await sh('date +%s.%N'));
    const hostAfter = Date.now() / 1000;
    assert.ok(
      guest - hostAfter < 2 && guest - hostBefore > -2,
      `guest clock within 2 s of the host's (${(guest - hostAfter).toFixed(2)}..${(guest - hostBefore).toFixed(2)} s)`,
    );
    assert.equal(existsSync(stateFile), false, 'used once');

    // snapshots: save → change files → restore → the change is gone and the guest is back where it was
    await sh('echo before > ~/snapfile && sync');
    t0 = Date.now();
    await ok(p, ['snapshot', 'save', 'web', 'clean']);
    t.diagnostic(`tend snapshot save (running): ${Date.now() - t0} ms`);
    const ls = JSON.parse(await ok(p, ['snapshot', 'ls', 'web', '--json'])) as { snapshots: { name: string; vmState: boolean }[] };
    assert.deepEqual(
      ls.snapshots.map((x) => [x.name, x.vmState]),
      [['clean', true]],
    );
    await sh('echo after > ~/snapfile && touch ~/new-after-snapshot && sync');
    t0 = Date.now();
    await ok(p, ['snapshot', 'restore', 'web', 'clean']);
    t.diagnostic(`tend snapshot restore (running): ${Date.now() - t0} ms`);
    assert.equal(await sh('cat ~/snapfile'), 'before');
    assert.equal(await sh('test -e ~/new-after-snapshot && echo there || echo gone'), 'gone');
    assert.equal(await sh(`kill -0 ${pid} && echo alive`), 'alive', 'the process of the snapshot runs');
    const h0 = Date.now() / 1000;
    const g = Number(await sh('date +%s.%N'));
    const h1 = Date.now() / 1000;
    assert.ok(
      g - h1 < 2 && g - h0 > -2,
      `guest clock within 2 s after the snapshot restore (${(g - h1).toFixed(2)}..${(g - h0).toFixed(2)} s)`,
    );
    await ok(p, ['snapshot', 'rm', 'web', 'clean']);
    assert.deepEqual((JSON.parse(await ok(p, ['snapshot', 'ls', 'web', '--json'])) as { snapshots: unknown[] }).snapshots, []);

    // saved again, then a memory edit (and a host folder): the state is discarded, the VM cold-boots
    await ok(p, ['stop', 'web', '--save']);
    assert.equal(await psState(), 'saved');
    await writeFile(join(p.dir, 'tend.yaml'), yaml(image, 640, true));
    const cold = await both(p, ['up']);
    assert.match(
      cold,
      /saved state discarded: the VM's settings changed \(<memory unit="MiB">512<\/memory> → <memory unit="MiB">640<\/memory>\); booting with its disk kept/,
    );
    assert.doesNotMatch(cold, /restored from its saved state/);
    assert.equal((await virsh('domstate', '--reason', dom)).out, 'running (booted)');
    assert.notEqual(await sh('cat /proc/sys/kernel/random/boot_id'), boot0, 'a new boot');
    assert.equal(await sh(`kill -0 ${pid} 2>/dev/null && echo alive || echo gone`), 'gone');
    const live = (await virsh('dumpxml', dom)).out;
    assert.match(live, /<memory unit='KiB'>655360<\/memory>/, 'the domain has the new memory');
    // its disk on the root bus, where the QEMU backend has it (domain-xml.ts SLOT), not behind a root port
    assert.match(
      live,
      /<target dev='vda' bus='virtio'\/>[\s\S]*?<address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'\/>/,
    );
    const memKb = Number(/MemTotal:\s+(\d+)/.exec(await ok(p, ['exec', 'web', '--', 'cat', '/proc/meminfo']))?.[1]);
    assert.ok(memKb > 540 * 1024 && memKb <= 640 * 1024, `guest sees ${memKb} kB after the edit`);
    assert.equal(await sh('cat ~/marker'), 'kept', 'disk kept');

    // the host folder, over virtiofs through libvirt: the domain has the filesystem, the guest reads and writes it
    assert.match((await virsh('dumpxml', dom)).out, /<driver type='virtiofs'\/>/);
    assert.match((await virsh('dumpxml', dom)).out, /<source type='memfd'\/>/);
    assert.equal((await ok(p, ['exec', 'web', '--', 'cat', '/srv/share/hello.txt'])).trim(), 'from the host');
    await ok(p, ['exec', 'web', '--', 'sudo', 'sh', '-c', 'echo from the guest > /srv/share/back.txt']);
    assert.equal((await readFile(join(p.dir, 'share', 'back.txt'), 'utf8')).trim(), 'from the guest');
    // virtiofs cannot migrate: libvirt refuses the save, the VM keeps running
    const refused = await runCli(['stop', 'web', '--save'], { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 300_000 });
    assert.notEqual(refused.code, 0, `stop --save of a VM with a host folder: ${refused.stdout}${refused.stderr}`);
    assert.match(refused.stdout + refused.stderr, /libvirt could not save its state \(.*\); the VM keeps running/);
    assert.equal((await virsh('domstate', dom)).out, 'running');
    assert.equal((await ok(p, ['exec', 'web', '--', 'hostname'])).trim(), 'lvweb');
    await ok(p, ['start', 'web']); // clears the stop intent the refused stop recorded

    // watch: a destroy behind its back is repaired
    const watch = spawnWatch<Event>(p, t);
    const events = watch.events;
    const count = (reason: string) => events.filter((e) => e.reason === reason && e.vm === 'web').length;
    const waitFor = (reason: string, n: number, what: string) => watch.until(() => count(reason) >= n, `${reason} #${n} (${what})`);
    // `up` left the VM Ready (recorded for this boot), so watch's first pass finds nothing to do:
    // it says Reconciled and emits no VmReady. Count watch's VmReady events from there.
    await watch.until(() => events.some((e) => e.reason === 'Reconciled'), "watch's first pass");
    const ready0 = count('VmReady');

    const evBefore = events.length;
    const d = await virsh('destroy', dom);
    const destroyedAt = Date.now();
    assert.equal(d.code, 0, d.err);
    // watch's own events only: its first pass started nothing
    await waitFor('VmStarting', 1, 'the restart after virsh destroy');
    // an exit between reconciles is VmExited; one during a readiness check fails that check (VmFailed)
    const exited = events
      .slice(evBefore)
      .find((e) => e.reason === 'VmExited' || (e.reason === 'VmFailed' && /killed or crashed/.test(e.message)));
    assert.ok(
      exited,
      `watch reported the exit: ${events
        .slice(evBefore)
        .map((e) => e.reason)
        .join(', ')}`,
    );
    const begun = events.slice(evBefore).find((e) => e.reason === 'VmPreparing' || e.reason === 'VmStarting');
    assert.ok(begun);
    const ms = Date.parse(begun.time) - destroyedAt;
    assert.ok(ms < 1000, `restart begun ${ms} ms after virsh destroy returned`);
    t.diagnostic(`virsh destroy -> restart begun: ${ms} ms`);
    await waitFor('VmReady', ready0 + 1, 'Ready after the destroy');
    assert.equal((await ok(p, ['exec', 'web', '--', 'cat', 'marker'])).trim(), 'kept');
    assert.equal(await mac(), mac0, 'the NIC kept its MAC through a restore and two boots (each start defines the domain again)');

    assert.equal(await watch.stop(), 0);
    assert.equal((await virsh('domstate', dom)).out, 'running', 'watch leaves the VM running');

    // down --destroy: nothing left
    const pd = projectDir(p.stateDir, 'lvirt', p.dir);
    await ok(p, ['down', '--destroy']);
    assert.notEqual((await virsh('dominfo', dom)).code, 0, 'no domain');
    // the folder may keep the stop intent `tend down` records (design §3); nothing of the VM is left
    for (const k of ['disk', 'seed', 'privateKey', 'applied'] as const)
      assert.equal(existsSync(vmFile(pd, 'web', k)), false, `no ${k} left after down --destroy`);
    assert.equal(existsSync(vmFile(pd, 'web', 'efiVars')), false, 'no NVRAM file');
    assert.doesNotMatch((await virsh('list', '--all', '--name')).out, new RegExp(dom));
    assert.equal(existsSync(stateFile), false, 'no managed save');
  },
);
