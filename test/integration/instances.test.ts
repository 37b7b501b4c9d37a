/**
 * Named instances (ov's `-i NAME`) through the commands, on the real QEMU backend code driving
 * the fake qemu-system-x86_64 (test/fake-qemu; no guest, so readiness is a no-op guest):
 * `tend up -i prod` and `-i dev` make `web-prod` and `web-dev` from one declared VM, each with its
 * own disk, seed, key pair and host ports (the declared VM's fixed host port is not reused); they
 * are recorded, so a plain `tend up` keeps them, `tend watch` restarts one killed behind its back,
 * and `ps -i` lists them; `stop -i`, `destroy -i`
 * and `down -i --destroy` act on them, and a destroyed instance is forgotten.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Guest } from '../../schemas/ports.js';
import { convergeCommand } from '../../src/cli/commands/converge.js';
import { psCommand } from '../../src/cli/commands/ps.js';
import { stopCommand } from '../../src/cli/commands/stop.js';
import { destroyCommand } from '../../src/cli/commands/destroy.js';
import { downCommand } from '../../src/cli/commands/down.js';
import { watchCommand } from '../../src/cli/commands/watch.js';
import { readInstances } from '../../src/state/instances.js';
import { projectDir, vmFile } from '../../src/state/paths.js';
import { pidAlive } from '../../src/pid.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const noGuest: Guest = { waitReady: async () => undefined, provision: async () => undefined, provisionPending: async () => false };
const pids = new Set<number>();
after(() => {
  for (const p of pids) if (pidAlive(p)) process.kill(p, 'SIGKILL');
});

test(
  'up -i prod / -i dev: two instances with their own disks, keys and ports; recorded until destroyed',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tend-inst-'));
    const stateDir = mkdtempSync(join(tmpdir(), 'tend-inst-state-'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1G']);
    writeFileSync(
      join(dir, 'tend.yaml'),
      [
        'name: inst',
        'services:',
        '  web:',
        '    image: ./base.qcow2',
        '    backend: qemu',
        '    accel: tcg',
        '    vm: { vcpu: 1, memory_mb: 256 }',
        '    ports: ["18480:80"]',
        '    stop_grace_period: 1s',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, PATH: `${fakeDir}:${process.env.PATH ?? ''}`, FAKE_QEMU_MODE: '', TEND_STATE_DIR: stateDir };
    const g = { cwd: dir, env, stateDir, guest: noGuest };
    const pd = projectDir(stateDir, 'inst', dir);

    const prod = await convergeCommand({ ...g, instance: 'prod' });
    assert.equal(prod.ok, true, JSON.stringify(prod.entries));
    assert.deepEqual(
      prod.entries.map((e) => e.vm),
      ['web-prod'],
      '`up -i prod` converges the instance, not the declared VM',
    );
    const dev = await convergeCommand({ ...g, names: ['web'], instance: 'dev' });
    assert.equal(dev.ok, true);
    assert.deepEqual(readInstances(pd), { web: ['dev', 'prod'] });

    const ps = await psCommand(g);
    const rows = Object.fromEntries(ps.vms.map((v) => [v.name, v]));
    for (const n of ['web-prod', 'web-dev']) {
      assert.equal(rows[n]?.state, 'running', `${n} runs`);
      assert.equal(rows[n]?.declared, true, `${n} is a VM of the project, not an orphan`);
      if (rows[n]?.pid) pids.add(rows[n].pid!);
    }
    assert.equal(rows.web?.state, 'not-created', 'the declared VM itself was not asked for');

    // each its own disk, seed, key pair, instance-id and host ports
    for (const k of ['disk', 'seed', 'privateKey', 'instanceId'] as const) {
      assert.ok(existsSync(vmFile(pd, 'web-prod', k)) && existsSync(vmFile(pd, 'web-dev', k)), `both have a ${k}`);
      assert.notEqual(vmFile(pd, 'web-prod', k), vmFile(pd, 'web-dev', k));
    }
    assert.notEqual(readFileSync(vmFile(pd, 'web-prod', 'publicKey'), 'utf8'), readFileSync(vmFile(pd, 'web-dev', 'publicKey'), 'utf8'));
    assert.notEqual(readFileSync(vmFile(pd, 'web-prod', 'instanceId'), 'utf8'), readFileSync(vmFile(pd, 'web-dev', 'instanceId'), 'utf8'));
    const hostPorts = (vm: string) => [rows[vm].ssh, ...Object.values(rows[vm].ports)];
    const all = [...hostPorts('web-prod'), ...hostPorts('web-dev')];
    assert.equal(new Set(all).size, all.length, `distinct host ports: ${all.join(' ')}`);
    assert.ok(!all.some((p) => p?.endsWith(':18480')), `the declared VM's fixed port is not an instance's: ${all.join(' ')}`);
    assert.equal(Object.keys(rows['web-prod'].ports).length, 1, 'the instance forwards the declared guest port');

    // ps -i filters; a plain `tend up` keeps the instances (they are recorded) and creates the declared VM
    const onlyProd = await psCommand({ ...g, instance: 'prod' });
    assert.deepEqual(
      onlyProd.vms.map((v) => v.name),
      ['web-prod'],
    );
    const plain = await convergeCommand(g);
    assert.equal(plain.ok, true);
    const after1 = Object.fromEntries((await psCommand(g)).vms.map((v) => [v.name, v]));
    for (const n of ['web', 'web-prod', 'web-dev']) {
      assert.equal(after1[n]?.state, 'running', `${n} runs after a plain up`);
      if (after1[n]?.pid) pids.add(after1[n].pid!);
    }
    assert.equal(after1['web-prod'].pid, rows['web-prod'].pid, 'a converged instance is left alone');

    // `tend watch` keeps a recorded instance running: killed behind its back, it is restarted
    const ac = new AbortController();
    let passes = 0;
    const watching = watchCommand({ ...g, signal: ac.signal, resync: '0', onPass: () => passes++ });
    watching.catch(() => undefined);
    const until = async (cond: () => boolean, what: string): Promise<void> => {
      const t0 = Date.now();
      while (!cond()) {
        if (Date.now() - t0 > 30_000) assert.fail(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => passes >= 1, "watch's first pass");
    const before = after1['web-prod'].pid!;
    process.kill(before, 'SIGKILL');
    const pidOf = (vm: string): number | null => {
      try {
        const n = Number(readFileSync(vmFile(pd, vm, 'pid'), 'utf8').trim());
        return Number.isInteger(n) && pidAlive(n) ? n : null;
      } catch {
        return null;
      }
    };
    await until(() => pidOf('web-prod') !== null && pidOf('web-prod') !== before, 'web-prod restarted by watch');
    pids.add(pidOf('web-prod')!);
    ac.abort();
    await watching.catch(() => undefined);

    // one-VM verbs take -i through the CLI: the command functions get <vm>-<instance>
    const stopped = await stopCommand({ ...g, name: 'web-dev' });
    assert.equal(stopped.state, 'Stopped');
    const destroyed = await destroyCommand({ ...g, name: 'web-dev' });
    assert.ok(!destroyed.error, String(destroyed.error));
    assert.deepEqual(readInstances(pd), { web: ['prod'] }, 'a destroyed instance is forgotten');
    assert.equal(existsSync(vmFile(pd, 'web-dev', 'disk')), false);

    const down = await downCommand({ ...g, instance: 'prod', destroy: true });
    assert.equal(down.ok, true);
    assert.deepEqual(
      down.entries.map((e) => e.vm),
      ['web-prod'],
      '`down -i prod` only touches the instance',
    );
    assert.deepEqual(readInstances(pd), {});
    const last = Object.fromEntries((await psCommand(g)).vms.map((v) => [v.name, v]));
    assert.deepEqual(Object.keys(last), ['web'], 'no instance is left, the declared VM runs on');
    assert.equal(last.web.state, 'running');
    await downCommand({ ...g, destroy: true });
  },
);
