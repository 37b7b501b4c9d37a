/**
 * End to end, on the real Debian 12 guest (issue 15 §4), with two boots in all:
 *  - boot 1: `tend stop --save` → `tend up` restores it: a process started before the save still
 *    runs with the same PID, its counter goes on, the guest clock is within 2 s of the host's;
 *    `ps` shows `saved` and `status` the state's size meanwhile. Then `stop: save` (the file's
 *    policy) is what `tend down` does.
 *  - an edit of memory between that save and the next start discards the state (one line saying
 *    why) and cold-boots (boot 2) on the same disk: a file written before the save is there.
 *  - on boot 2: `snapshot save` → change a file → `snapshot restore` → the change is gone.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, runCli, tempProject, type TempProject } from './helpers.js';

const tendYaml = (image: string, memory: number) =>
  ['name: warm', 'services:', '  w:', `    image: ${image}`, `    vm: { vcpu: 1, memory_mb: ${memory} }`, '    stop: save', ''].join('\n');

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

    await ok(p, ['up']);
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

    await ok(p, ['down', '--destroy']);
  },
);
