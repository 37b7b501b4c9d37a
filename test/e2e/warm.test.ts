/**
 * End to end, on the real Debian 12 guest (issue 15 §4), with two boots in all:
 *  - boot 1: `tend stop --save` → `tend up` restores it: a process started before the save still
 *    runs with the same PID, its counter goes on, the guest clock is within 2 s of the host's;
 *    `ps` shows `saved` and `status` the state's size meanwhile. Then `stop: save` (the file's
 *    policy) is what `tend down` does.
 *  - an edit of memory between that save and the next start discards the state (one line saying
 *    why) and cold-boots (boot 2) on the same disk: a file written before the save is there.
 *  - on boot 2: `snapshot save` → change a file → `snapshot restore` → the change is gone.
 *  - warm clones (issue 15 §2), no boot of their own: `w` is warm (the file's top-level `warm: true`), so its first Ready kept
 *    a template; two `tend run IMAGE --warm` VMs start from it and both reach Ready, with their
 *    own hostname, machine-id and SSH host key (pinned), their own disk (an overlay on the
 *    template's read-only disk), and a file written in one is not seen in the other.
 *    `image templates` lists the template with its users; `image prune` keeps it while a disk is
 *    backed by it and removes it after.
 */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, runCli, tempProject, type TempProject } from './helpers.js';

const tendYaml = (image: string, memory: number) =>
  [
    'name: warm',
    'warm: true', // the project-wide default (w sets none of its own)
    'services:',
    '  w:',
    `    image: ${image}`,
    `    vm: { vcpu: 1, memory_mb: ${memory} }`,
    '    stop: save',
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

async function psState(p: TempProject): Promise<string> {
  const r = JSON.parse(await ok(p, ['ps', '--json'])) as { vms: { name: string; state: string }[] };
  return r.vms.find((v) => v.name === 'w')!.state;
}

test(
  'warm starts on a real guest: save → restore keeps processes and time; a memory edit cold-boots; snapshots',
  { timeout: 1_500_000 },
  async (t) => {
    const image = await findImage();
    const p = await tempProject({ 'tend.yaml': tendYaml(image, 1024) });
    t.after(() => p.cleanup());

    const first = await ok(p, ['up']);
    assert.match(first, /warm template [0-9a-f]{16} kept/, 'the first Ready of a warm VM keeps a template');
    await sh(p, 'echo kept > ~/marker && sync');
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

    // 2. `stop: save` is what down does; a memory edit then discards the state and cold-boots
    assert.match(await ok(p, ['down']), /memory saved/);
    assert.equal(await psState(p), 'saved');
    await writeFile(join(p.dir, 'tend.yaml'), tendYaml(image, 1280));
    const cold = await ok(p, ['up']);
    assert.match(cold, /saved state discarded: the VM's settings changed \(-m 1024 → -m 1280\); booting with its disk kept/);
    assert.doesNotMatch(cold, /restored from its saved state/);
    assert.equal(await sh(p, 'cat ~/marker'), 'kept', 'same disk');
    assert.equal(await sh(p, `kill -0 ${pid} 2>/dev/null && echo alive || echo gone`), 'gone', 'a new boot');
    assert.equal(await sh(p, 'free -m | awk "/^Mem:/ {print (\\$2 > 1100)}"'), '1', 'with the new memory');

    // 3. snapshot save → change a file → restore → the change is gone
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

    // 4. two warm clones of w's template (w is gone: the template outlives its source)
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
    for (const c of clones) {
      const t0 = Date.now();
      const r = await cli(p, ['run', image, '--warm', '--name', c, '--', 'hostname']);
      const out = r.stdout + r.stderr;
      assert.equal(r.code, 0, out);
      assert.equal(r.stdout.trim(), c, 'the command ran in the clone, which has its own hostname');
      assert.match(out, new RegExp(`creating disk over warm template ${tpl.key}`));
      assert.match(out, /hostname, machine-id, SSH host key and instance-id made its own/);
      console.error(`clone ${c}: tend run --warm -- hostname took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
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

    assert.deepEqual((await templates())[0]?.usedBy.length, 2, 'the template is used by both clones');
    assert.match(await ok(p, ['image', 'prune']), /kept template .*2 VM disk/);
    for (const c of clones) await ok(p, ['down', c, '--destroy']);
    assert.match(await ok(p, ['image', 'prune']), new RegExp(`removed template ${tpl.key}`));
    assert.deepEqual(await templates(), []);
  },
);

/** The project folder (under <state>/projects) of a `tend run` VM. */
async function projectOf(p: TempProject, vm: string): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  const dirs = await readdir(join(p.stateDir, 'projects'));
  const hit = dirs.find((d) => d.startsWith(`${vm}-`));
  assert.ok(hit, `a project folder for ${vm} (${dirs.join(', ')})`);
  return hit;
}
