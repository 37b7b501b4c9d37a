/**
 * End to end, on the real Debian 12 guest image: with `tend watch` running, editing memory in
 * the file restarts the VM with the new memory and its disk kept, and `kill -9` of its QEMU
 * brings it back to Ready without any command.
 */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findImage, runCli, spawnWatch, tempProject, type TempProject } from './helpers.js';

interface Event {
  reason: string;
  vm?: string;
  message: string;
}

async function qemuPids(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (/qemu-system/.test(cmd.split('\0')[0] ?? '') && cmd.includes(needle)) out.push(Number(e));
  }
  return out;
}

async function ok(p: TempProject, args: string[]): Promise<string> {
  const r = await runCli(args, { cwd: p.dir, stateDir: p.stateDir, timeoutMs: 600_000 });
  assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

const yaml = (image: string, memory: number) =>
  `name: watched\nservices:\n  w:\n    image: ${image}\n    vm: { vcpu: 1, memory_mb: ${memory} }\n    cloud_init: { hostname: watched }\n`;

test(
  'tend watch: a memory edit restarts the VM with its disk kept; a killed QEMU comes back by itself',
  { timeout: 1_500_000 },
  async (t) => {
    const image = await findImage();
    const p = await tempProject({ 'tend.yaml': yaml(image, 512) });
    t.after(() => p.cleanup());

    const watch = spawnWatch<Event>(p, t);

    /** Wait for the n-th VmReady of the VM (counting from 1). */
    const readyCount = () => watch.events.filter((e) => e.reason === 'VmReady' && e.vm === 'w').length;
    const waitReady = (n: number, what: string) =>
      watch.until(() => readyCount() >= n, `VmReady #${n} (${what})`, { ms: 600_000, pollMs: 500 });

    await waitReady(1, 'the first converge');
    assert.equal((await ok(p, ['exec', 'w', '--', 'hostname'])).trim(), 'watched');
    await ok(p, ['exec', 'w', '--', 'sh', '-c', 'echo kept > ~/marker && sync']);
    const [firstPid] = await qemuPids(p.stateDir);

    // Edit and save: watch restarts the VM with the new memory, disk kept.
    await writeFile(join(p.dir, 'tend.yaml'), yaml(image, 768));
    await waitReady(2, 'the restart after the memory edit');
    const [secondPid] = await qemuPids(p.stateDir);
    assert.notEqual(secondPid, firstPid, 'a new QEMU process runs the new settings');
    const memKb = Number(/MemTotal:\s+(\d+)/.exec(await ok(p, ['exec', 'w', '--', 'cat', '/proc/meminfo']))?.[1]);
    assert.ok(memKb > 600 * 1024 && memKb <= 768 * 1024, `guest sees ${memKb} kB after the edit`);
    assert.equal((await ok(p, ['exec', 'w', '--', 'cat', 'marker'])).trim(), 'kept');

    // kill -9 of QEMU: back to Ready with no command.
    process.kill(secondPid, 'SIGKILL');
    await waitReady(3, 'the restart after kill -9');
    const [thirdPid] = await qemuPids(p.stateDir);
    assert.ok(thirdPid && thirdPid !== secondPid);
    assert.equal((await ok(p, ['exec', 'w', '--', 'cat', 'marker'])).trim(), 'kept');

    // SIGTERM ends watch promptly and leaves the VM running.
    assert.equal(await watch.stop(), 0);
    assert.deepEqual(await qemuPids(p.stateDir), [thirdPid]);
    await ok(p, ['down', '--destroy']);
    assert.deepEqual(await qemuPids(p.stateDir), []);
  },
);
