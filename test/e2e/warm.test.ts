/**
 * End to end, on the real Debian 12 guest (issue 15 §4), with four boots in all:
 *  - boot 1: `tend stop --save` → `tend up` restores it: a process started before the save still
 *    runs with the same PID, its counter goes on, the guest clock is within 2 s of the host's;
 *    `ps` shows `saved` and `status` the state's size meanwhile.
 *  - on it: `snapshot save` → change a file → `snapshot restore` → the change is gone.
 *  - warm clones (issue 15 §2), no boot of their own: `w` is warm (the file's top-level `warm: true`), so its first Ready kept
 *    a template; two `tend run IMAGE --warm` VMs start from it and both reach Ready, with their
 *    own hostname, machine-id and SSH host key (pinned), their own disk (an overlay on the
 *    template's read-only disk), and a file written in one is not seen in the other.
 *    `image templates` lists the template with its users; `image prune` keeps it while a disk is
 *    backed by it and removes it after. c2 has a named volume and a host folder, plugged in after
 *    its restore: it sees the folder's file, writes to both (their cold boot: c's, in boot 3).
 *  - warm clones on the project network (issue 15 §2 "MAC where the project network needs it"):
 *    boot 2 is `a`, the first VM of a three-VM warm project, which keeps a template with a
 *    project NIC; `b` and `c` are its clones, each with its own MAC and address on the project
 *    network (the ones tend gave it), reached by name from the others and reaching them; a listener
 *    on the project segment sees no clone announce a's MAC or address (their link is down until then).
 *    c also has a named volume and a host folder, plugged in after its restore as c2's.
 *  - boot 3, two clones' cold boots side by side in one `tend up`:
 *    `stop: save` (the file's policy) is what `tend down b c` does for b; an edit of b's memory
 *    then discards the state (one line saying why) and cold-boots it on the same disk: a file
 *    written before the save is there, and b keeps its own address and MAC (not the template's:
 *    cloud-init's network files of the template's first boot were made its own). c, powered off
 *    (a clone with plugged volumes is never saved), boots cold with its volume and folder in its
 *    argv: the file written to the volume while plugged is there, and the folder. (Quiet 2-core
 *    host: b's cold boot alone 46 s, b's and c's side by side 65 s; c2's cold restart, which this
 *    replaced, 52 s.)
 *  - boot 4, UEFI: `tend run --uefi` boots under OVMF and keeps a template with its variable store;
 *    the next `tend run --uefi` is a UEFI clone with its own identity and its own NVRAM file.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, runCli, tempProject, type TempProject } from './helpers.js';

const tendYaml = (image: string) =>
  [
    'name: warm',
    'warm: true', // the project-wide default (w sets none of its own)
    'services:',
    '  w:',
    `    image: ${image}`,
    '    vm: { vcpu: 1, memory_mb: 1024 }',
    '',
  ].join('\n');

async function cli(p: TempProject, args: string[]) {
  return runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 600_000 });
}

async function ok(p: TempProject, args: string[]): Promise<string> {
  const r = await cli(p, args);
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout + r.stderr;
}

const sh = async (p: TempProject, script: string): Promise<string> => (await ok(p, ['exec', 'w', '--', 'sh', '-c', script])).trim();

/** The guest's clock minus the host's, in seconds (bounded by the exec's round trip). */
async function clockSkew(p: TempProject): Promise<{ low: number; high: number }> {
  const before = Date.now() / 1000;
  const guest = Number(await sh(p, 'date +%s.%N'));
  const after = Date.now() / 1000;
  return { low: guest - after, high: guest - before };
}

async function psState(p: TempProject, vm = 'w'): Promise<string> {
  const r = JSON.parse(await ok(p, ['ps', '--json'])) as { vms: { name: string; state: string }[] };
  return r.vms.find((v) => v.name === vm)!.state;
}

test(
  'warm starts on a real guest: save → restore keeps processes and time; snapshots; two warm clones of one template',
  { timeout: 1_500_000 },
  async (t) => {
    const image = await findImage();
    const p = await tempProject({ 'tend.yaml': tendYaml(image) });
    t.after(() => p.cleanup());

    const first = await ok(p, ['up']);
    assert.match(first, /warm template [0-9a-f]{16} kept/, 'the first Ready of a warm VM keeps a template');
    // a process that outlives the save: it counts into a file
    const pid = await sh(
      p,
      "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done' >/dev/null 2>&1 < /dev/null & echo $!",
    );
    assert.match(pid, /^\d+$/);
    await new Promise((r) => setTimeout(r, 1000));
    const before = Number(await sh(p, 'cat /tmp/counter'));
    assert.ok(before > 0);

    // 1. stop --save, then up restores it
    const stopped = await ok(p, ['stop', 'w', '--save']);
    assert.match(stopped, /memory saved/);
    assert.equal(await psState(p), 'saved');
    assert.match(await ok(p, ['status', 'w']), /Saved state: +\d+ MiB, saved /);
    await new Promise((r) => setTimeout(r, 5000)); // the guest clock stands still meanwhile
    const restored = await ok(p, ['up']);
    assert.match(restored, /restored from its saved state/);
    assert.match(restored, /guest clock set to the host time/);
    assert.equal(await sh(p, `kill -0 ${pid} && echo alive`), 'alive', 'the process started before the save still runs');
    const after = Number(await sh(p, 'cat /tmp/counter'));
    assert.ok(after > before, `counter went on (${before} → ${after})`);
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(Number(await sh(p, 'cat /tmp/counter')) > after, 'and still counts');
    const skew = await clockSkew(p);
    assert.ok(skew.low < 2 && skew.high > -2, `guest clock within 2 s of the host's (${skew.low.toFixed(2)}..${skew.high.toFixed(2)} s)`);

    // 2. snapshot save → change a file → restore → the change is gone
    await sh(p, 'echo before > ~/snapfile && sync');
    await ok(p, ['snapshot', 'save', 'w', 'clean']);
    const ls = JSON.parse(await ok(p, ['snapshot', 'ls', 'w', '--json'])) as { snapshots: { name: string; vmState: boolean }[] };
    assert.deepEqual(
      ls.snapshots.map((s) => [s.name, s.vmState]),
      [['clean', true]],
    );
    await sh(p, 'echo after > ~/snapfile && touch ~/new-after-snapshot && sync');
    await ok(p, ['snapshot', 'restore', 'w', 'clean']);
    assert.equal(await sh(p, 'cat ~/snapfile'), 'before');
    assert.equal(await sh(p, 'test -e ~/new-after-snapshot && echo there || echo gone'), 'gone');
    const skew2 = await clockSkew(p);
    assert.ok(skew2.low < 2 && skew2.high > -2, `guest clock within 2 s after the snapshot restore`);
    await ok(p, ['snapshot', 'rm', 'w', 'clean']);
    assert.deepEqual((JSON.parse(await ok(p, ['snapshot', 'ls', 'w', '--json'])) as { snapshots: unknown[] }).snapshots, []);

    const wIdentity = await sh(p, 'cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub');
    await ok(p, ['down', '--destroy']);

    // 3. two warm clones of w's template (w is gone: the template outlives its source)
    const templates = async () =>
      (
        JSON.parse(await ok(p, ['image', 'templates', '--json'])) as {
          templates: { key: string; bytes: number; path: string; usedBy: string[] }[];
        }
      ).templates;
    const [tpl] = await templates();
    assert.ok(tpl && tpl.bytes > 100 * 1048576, `one template with its disk and memory (${JSON.stringify(await templates())})`);
    const frozen = join(tpl.path, 'disk.qcow2');
    assert.equal((await stat(frozen)).mode & 0o777, 0o400, "the template's disk is read-only");
    const clones = ['c1', 'c2'];
    // c2 has a named volume and a host folder: a clone all the same, they are plugged in after the restore
    await mkdir(join(p.dir, 'share'));
    await writeFile(join(p.dir, 'share', 'from-host'), 'host-file\n');
    const mounts: Record<string, string[]> = { c1: [], c2: ['-v', 'data:/data', '-v', './share:/share'] };
    for (const c of clones) {
      const t0 = Date.now();
      const r = await cli(p, ['run', image, '--warm', '--name', c, ...mounts[c]!, '--', 'hostname']);
      const out = r.stdout + r.stderr;
      assert.equal(r.code, 0, out);
      assert.equal(r.stdout.trim(), c, 'the command ran in the clone, which has its own hostname');
      assert.match(out, new RegExp(`creating disk over warm template ${tpl.key}`));
      assert.match(out, /hostname, machine-id, SSH host key and instance-id made its own/);
      if (c === 'c2') assert.match(out, /volumes and host folders plugged into the warm clone and mounted \(\/data, \/share;/);
      console.error(`clone ${c}: tend run --warm -- hostname took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      if (c === 'c2') console.error(/volumes and host folders plugged[^\n]*/.exec(out)?.[0]);
    }
    const ex = async (vm: string, script: string) => (await ok(p, ['exec', vm, '--', 'sh', '-c', script])).trim();
    const ids: Record<string, string[]> = {};
    for (const c of clones) {
      ids[c] = (await ex(c, 'hostname; cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub /var/lib/cloud/data/instance-id')).split('\n');
      assert.equal(ids[c]![0], c, `${c} has its own hostname`);
      assert.equal(await ex(c, 'getent hosts $(hostname) >/dev/null && echo resolves'), 'resolves', `${c}: /etc/hosts names it`);
    }
    const [h1, m1, k1, i1] = ids.c1!;
    const [, m2, k2, i2] = ids.c2!;
    assert.notEqual(m1, m2, 'machine-ids differ');
    assert.ok(!wIdentity.includes(m1!) && !wIdentity.includes(m2!), "neither has the template's machine-id");
    assert.notEqual(k1!.split(' ')[1], k2!.split(' ')[1], 'host keys differ');
    assert.ok(!wIdentity.includes(k1!.split(' ')[1]!) && !wIdentity.includes(k2!.split(' ')[1]!), "neither has the template's host key");
    assert.notEqual(i1, i2, 'instance-ids differ');
    assert.equal(h1, 'c1');
    // the pin tend holds for each is the key the guest has (tend exec checked it on connecting)
    for (const c of clones) {
      const pinned = await readFile(join(p.stateDir, 'projects', await projectOf(p, c), 'vms', c, 'known_hosts'), 'utf8');
      assert.ok(pinned.includes(ids[c]![2]!.split(' ')[1]!), `${c}'s pinned host key is its new one`);
    }
    // own disks, each an overlay on the template's frozen disk; a write in one is not in the other
    const disks = [];
    for (const c of clones) {
      const disk = join(p.stateDir, 'projects', await projectOf(p, c), 'vms', c, 'disk.qcow2');
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' })) as {
        'backing-filename'?: string;
      };
      assert.equal(info['backing-filename'], frozen, `${c}'s disk is backed by the template's`);
      disks.push((await stat(disk)).ino);
    }
    assert.notEqual(disks[0], disks[1], 'two disk files');
    await ex('c1', 'echo only-c1 > ~/mine && sync');
    assert.equal(await ex('c2', 'cat ~/mine 2>/dev/null || echo absent'), 'absent', 'a write in c1 is not seen in c2');
    assert.equal(await ex('c1', 'cat ~/mine'), 'only-c1');

    // c2's volume and host folder (hot-plugged, mounted as the seed's bootcmd does); a cold boot
    // with them in its argv is c's, in the project-network test (boot 3)
    assert.equal(await ex('c2', 'cat /share/from-host'), 'host-file', "the host folder's file");
    await ex('c2', "sudo sh -c 'echo on-the-volume > /data/mine && echo from-guest > /share/from-guest && sync'");
    assert.equal(await readFile(join(p.dir, 'share', 'from-guest'), 'utf8'), 'from-guest\n', 'a write to the folder is on the host');
    assert.equal(await ex('c1', 'mountpoint -q /data && echo mounted || echo none'), 'none', 'c1 has no volume');
    const vol = join(p.stateDir, 'projects', await projectOf(p, 'c2'), 'volumes', 'data.qcow2');
    assert.ok((await stat(vol)).isFile(), "c2's volume is a file of its own project");
    assert.deepEqual(
      (await readdir(tpl.path)).filter((f) => !/^(disk\.qcow2|state\.bin|template\.json|id_ed25519(\.pub)?)$/.test(f)),
      [],
      'the template holds no volume',
    );

    assert.deepEqual((await templates())[0]?.usedBy.length, 2, 'the template is used by both clones');
    assert.match(await ok(p, ['image', 'prune']), /kept template .*2 VM disk/);
    for (const c of clones) await ok(p, ['down', c, '--destroy']);
    assert.match(await ok(p, ['image', 'prune']), new RegExp(`removed template ${tpl.key}`));
    assert.deepEqual(await templates(), []);
  },
);

test(
  'UEFI warm clones on a real guest: a run VM keeps a template with its NVRAM; the next run is a clone',
  { timeout: 1_200_000 },
  async (t) => {
    // one boot: `tend run --uefi` (warm by default) boots under OVMF and keeps a template
    const image = await findImage();
    const p = await tempProject({});
    t.after(() => p.cleanup());
    const first = await cli(p, [
      'run',
      image,
      '--uefi',
      '--name',
      'u1',
      '--',
      'sh',
      '-c',
      'cat /etc/machine-id; test -d /sys/firmware/efi && echo efi',
    ]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout + first.stderr, /warm template [0-9a-f]{16} kept/);
    const [m1, efi1] = first.stdout.trim().split('\n');
    assert.equal(efi1, 'efi', 'u1 booted with UEFI');
    const [tpl] = (JSON.parse(await ok(p, ['image', 'templates', '--json'])) as { templates: { key: string; path: string }[] }).templates;
    assert.ok(tpl);
    assert.equal((await stat(join(tpl.path, 'efivars.fd'))).mode & 0o777, 0o400, 'the template keeps the NVRAM, read-only');

    // the clone: restored from the template under OVMF, its own identity and NVRAM file
    const second = await cli(p, [
      'run',
      image,
      '--uefi',
      '--name',
      'u2',
      '--',
      'sh',
      '-c',
      'hostname; cat /etc/machine-id; test -d /sys/firmware/efi && echo efi',
    ]);
    const out = second.stdout + second.stderr;
    assert.equal(second.code, 0, out);
    assert.match(out, new RegExp(`creating disk over warm template ${tpl.key}`));
    assert.match(out, /hostname, machine-id, SSH host key and instance-id made its own/);
    const [h2, m2, efi2] = second.stdout.trim().split('\n');
    assert.equal(h2, 'u2');
    assert.notEqual(m2, m1, 'its own machine-id');
    assert.equal(efi2, 'efi', 'a UEFI guest');
    const vars = join(p.stateDir, 'projects', await projectOf(p, 'u2'), 'vms', 'u2', 'efi-vars.fd');
    assert.equal((await stat(vars)).mode & 0o777, 0o600, 'its own writable NVRAM file');
    for (const n of ['u1', 'u2']) await ok(p, ['down', n, '--destroy']);
  },
);

/** The project folder (under <state>/projects) of a `tend run` VM. */
async function projectOf(p: TempProject, vm: string): Promise<string> {
  const dirs = await readdir(join(p.stateDir, 'projects'));
  const hit = dirs.find((d) => d.startsWith(`${vm}-`));
  assert.ok(hit, `a project folder for ${vm} (${dirs.join(', ')})`);
  return hit;
}

/**
 * A listener on a project's segment (the UDP multicast group its VMs' project NICs share):
 * `announces(x)` lists the frames that announce x's MAC or address, RARP (what QEMU sends after
 * loading a migration stream) or gratuitous ARP (what a guest sends when told its NIC moved).
 */
async function watchSegment(pd: string) {
  const { projectSegment } = await import('../../src/net/project-net.js');
  const seg = projectSegment(pd);
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  const frames: Buffer[] = [];
  sock.on('message', (m) => frames.push(m));
  await new Promise<void>((resolve) => sock.bind(seg.port, resolve));
  sock.addMembership(seg.group, '127.0.0.1');
  const mac = (f: Buffer, at: number) => [...f.subarray(at, at + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  const ip = (f: Buffer, at: number) => [...f.subarray(at, at + 4)].join('.');
  return {
    close() {
      sock.close();
      return {
        frames: frames.length,
        from: (m: string) => frames.filter((f) => f.length >= 14 && mac(f, 6) === m).length,
        announces: (x: { mac: string; address: string }) =>
          frames
            .filter((f) => f.length >= 42)
            .filter((f) => {
              const type = f.readUInt16BE(12);
              if (type === 0x8035) return mac(f, 6) === x.mac || mac(f, 22) === x.mac;
              return type === 0x0806 && ip(f, 28) === x.address && ip(f, 38) === x.address;
            })
            .map((f) => `${f.readUInt16BE(12) === 0x8035 ? 'RARP' : 'ARP'} from ${mac(f, 6)}`),
      };
    },
  };
}

const pnYaml = (image: string, bMemory: number) =>
  [
    'name: pn',
    'warm: true',
    'services:',
    ...['a', 'b', 'c'].flatMap((n) => [
      `  ${n}:`,
      `    image: ${image}`,
      `    vm: { vcpu: 1, memory_mb: ${n === 'b' ? bMemory : 1024} }`,
      ...(n === 'b' ? ['    stop: save'] : []),
      // c: a clone with a named volume and a host folder, plugged in after its restore
      ...(n === 'c' ? ['    volumes: ["data:/data", "./share:/share"]'] : []),
    ]),
    'volumes:',
    '  data: { size: 1 }',
    '',
  ].join('\n');

test(
  'warm clones on the project network: own MAC and address, reached by name, kept over a cold boot; a volume and folder over one',
  { timeout: 1_500_000 },
  async (t) => {
    const image = await findImage();
    const p = await tempProject({ 'tend.yaml': pnYaml(image, 1024), 'share/from-host': 'host-file\n' });
    t.after(() => p.cleanup());
    const ex = async (vm: string, script: string) => (await ok(p, ['exec', vm, '--', 'bash', '-c', script])).trim();

    // boot 2: `a` alone (the project has three VMs, so it is on the project network): a template with a project NIC
    const first = await ok(p, ['up', '--name', 'a']);
    const key = /warm template ([0-9a-f]{16}) kept/.exec(first)?.[1];
    assert.ok(key, `a's first Ready keeps a template\n${first}`);
    // b and c start from it, watched from the project segment: they never announce a's MAC or address
    const pd = join(p.stateDir, 'projects', await projectOf(p, 'pn'));
    const segment = await watchSegment(pd);
    const t0 = Date.now();
    const up = await ok(p, ['up']);
    console.error(`b and c: tend up from the template took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const c of ['b', 'c']) {
      assert.match(up, new RegExp(`${c}: creating disk over warm template ${key}`));
      assert.match(up, new RegExp(`${c}: warm clone of template ${key}: hostname, machine-id, SSH host key, project MAC and address`));
    }
    assert.doesNotMatch(up, /warm template not used|warm clone abandoned/);
    assert.match(up, /c: volumes and host folders plugged into the warm clone and mounted \(\/data, \/share;/);
    // c's volume and folder, plugged in: the folder's file, a write to each
    assert.equal(await ex('c', 'cat /share/from-host'), 'host-file', "the host folder's file");
    await ex('c', "sudo sh -c 'echo on-the-volume > /data/mine && echo from-guest > /share/from-guest && sync'");
    assert.equal(await readFile(join(p.dir, 'share', 'from-guest'), 'utf8'), 'from-guest\n', 'a write to the folder is on the host');

    // what tend gave each VM: its address (network.json) and its MAC
    const { addresses } = JSON.parse(await readFile(join(pd, 'network.json'), 'utf8')) as { addresses: Record<string, number> };
    const { projectMac } = await import('../../src/net/project-net.js');
    const member = (vm: string) => ({ mac: projectMac(pd, vm), address: `10.213.0.${addresses[vm]}` });
    const vms = ['a', 'b', 'c'];
    assert.equal(new Set(vms.map((v) => member(v).address)).size, 3, JSON.stringify(addresses));
    /** The guest's view of its project NIC: the NIC with its member's MAC, and that NIC's IPv4 addresses. */
    const projectNic = async (vm: string) => {
      const { mac } = member(vm);
      const out = await ex(
        vm,
        `n=; for i in /sys/class/net/*; do [ "$(cat $i/address)" = ${mac} ] && n=$(basename $i); done; echo "nic=$n"; [ -n "$n" ] && ip -4 -o addr show dev $n | awk '{print $4}'; echo all; ip -4 -o addr show | awk '{print $4}'`,
      );
      const [nic, ...rest] = out.split('\n');
      const split = rest.indexOf('all');
      return { nic: nic!.replace('nic=', ''), own: rest.slice(0, split), all: rest.slice(split + 1) };
    };
    const reaches = async (from: string, to: string) => {
      const out = await ex(
        from,
        `getent hosts ${to} | awk '{print $1}'; timeout 10 bash -c 'exec 3<>/dev/tcp/${to}/22 && head -c 8 <&3'; echo`,
      );
      const [resolved, banner] = out.split('\n');
      assert.equal(resolved, member(to).address, `${from} resolves ${to} to ${to}'s own address`);
      assert.equal(banner, 'SSH-2.0-', `${from} reaches ${to}'s sshd by name`);
    };
    const checkNet = async (label: string) => {
      for (const vm of vms) {
        const nic = await projectNic(vm);
        assert.ok(nic.nic, `${label}: ${vm} has a NIC with its own MAC ${member(vm).mac}`);
        assert.deepEqual(nic.own, [`${member(vm).address}/24`], `${label}: ${vm}'s project NIC has its own address, only`);
        for (const other of vms)
          if (other !== vm) assert.ok(!nic.all.includes(`${member(other).address}/24`), `${label}: ${vm} has not ${other}'s address`);
      }
      for (const from of vms) for (const to of vms) if (from !== to) await reaches(from, to);
    };
    await checkNet('clones');
    // the clones' restores announced nothing as a (QEMU's RARP after a load, the guest's gratuitous
    // ARP): their project link was down until their identity step made MAC and address their own
    const seen = segment.close();
    console.error(`project segment during the clones' start: ${seen.frames} frames, ${seen.announces(member('a')).length} announcing a`);
    assert.ok(seen.from(member('b').mac) > 0, "the listener saw b's frames (it reached a and c)");
    assert.deepEqual(seen.announces(member('a')), [], "no clone announced a's MAC or address on the segment");

    // their own identity, as for any clone
    const ids: Record<string, string> = {};
    for (const vm of vms) ids[vm] = await ex(vm, 'hostname; cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub');
    for (const vm of vms) assert.equal(ids[vm]!.split('\n')[0], vm);
    assert.equal(new Set(vms.map((v) => ids[v]!.split('\n')[1])).size, 3, 'three machine-ids');
    assert.equal(new Set(vms.map((v) => ids[v]!.split('\n')[2]!.split(' ')[1])).size, 3, 'three host keys');

    // boot 3: b's and c's cold boots, side by side. `stop: save` is what `down` does for b; a memory
    // edit then discards the state. c (plugged volumes: never saved) is powered off and boots cold
    // with its volume and folder in its argv
    await ex('b', 'echo kept > ~/marker && sync');
    const pid = await ex('b', "setsid sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 < /dev/null & echo $!");
    const down = await ok(p, ['down', 'b', 'c']);
    assert.match(down, /b: [^\n]*memory saved/);
    assert.doesNotMatch(down, /c: [^\n]*memory saved/);
    assert.equal(await psState(p, 'b'), 'saved');
    assert.equal(await psState(p, 'c'), 'stopped');
    await writeFile(join(p.dir, 'tend.yaml'), pnYaml(image, 1280));
    const t1 = Date.now();
    const cold = await ok(p, ['up']);
    console.error(`b and c: cold boots of the two clones took ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    assert.match(cold, /saved state discarded: the VM's settings changed \(-m 1024 → -m 1280\); booting with its disk kept/);
    assert.doesNotMatch(cold, /restored from its saved state/);
    assert.doesNotMatch(cold, /c: [^\n]*(restored|warm clone|plugged)/, 'c: a cold boot');
    assert.equal(await ex('c', 'cat /data/mine'), 'on-the-volume', 'the write to the volume survived the cold boot');
    assert.equal(await ex('c', 'cat /share/from-host'), 'host-file', 'the host folder after a cold boot');
    assert.equal(await ex('c', 'hostname'), 'c');
    assert.equal(await ex('b', 'cat ~/marker'), 'kept', 'same disk');
    assert.equal(await ex('b', `kill -0 ${pid} 2>/dev/null && echo alive || echo gone`), 'gone', 'a new boot');
    assert.equal(await ex('b', 'free -m | awk "/^Mem:/ {print (\\$2 > 1100)}"'), '1', 'with the new memory');
    assert.equal(await ex('b', 'hostname; cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub'), ids.b, 'the same identity');
    await checkNet('after b and c cold-booted');
    await ok(p, ['down', '--destroy']);
  },
);
