import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan, describeAction, type PlanAction } from '../../controllers/plan.js';
import type { ObservedVm, Observed } from '../../schemas/ports.js';
import { applyDefaults } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';

function spec(name: string, over: Partial<VmSpec> = {}): VmSpec {
  return { ...applyDefaults({ name, image: { kind: 'catalog', ref: 'debian:12' } }), ...over };
}

function project(...vms: VmSpec[]): Project {
  return { name: 'p', dir: '/p', files: ['/p/tend.yaml'], vms, volumes: {} };
}

function obs(applied: VmSpec, over: Partial<ObservedVm> = {}): ObservedVm {
  return {
    name: applied.name,
    exists: true,
    power: 'running',
    pid: 123,
    applied,
    diskImage: 'x',
    accel: 'tcg',
    ports: {},
    sshPort: 2222,
    intent: null,
    provisioned: [],
    startedAt: 0,
    corrupt: [],
    ...over,
  };
}

function observed(...vms: ObservedVm[]): Observed {
  return { vms: Object.fromEntries(vms.map((v) => [v.name, v])) };
}

const base = spec('web');
const noFlags = { recreate: false, prune: false };

interface Row {
  change: string;
  desired: VmSpec;
  observed?: Partial<ObservedVm>;
  opts?: { recreate: boolean; prune: boolean };
  action: PlanAction;
  changed?: RegExp;
}

// One row per line of design §3's change table (and the run-state rows).
const rows: Row[] = [
  { change: 'nothing changed', desired: base, action: 'none' },
  { change: 'provision steps (live)', desired: { ...base, provision: [{ kind: 'shell', inline: ['true'] }] }, action: 'none' },
  {
    change: 'healthcheck (live)',
    desired: { ...base, healthcheck: { test: ['true'], interval: 5, retries: 1, startPeriod: 0, timeout: 1 } },
    action: 'none',
  },
  { change: 'restart policy (live)', desired: { ...base, restart: 'no' }, action: 'none' },
  { change: 'cpus', desired: { ...base, cpus: 4 }, action: 'restart', changed: /cpus: 1 → 4/ },
  { change: 'memory', desired: { ...base, memory: 2048 }, action: 'restart', changed: /memory: 1024 → 2048/ },
  { change: 'machine', desired: { ...base, machine: 'pc' }, action: 'restart', changed: /machine/ },
  { change: 'video', desired: { ...base, video: 'virtio' }, action: 'restart', changed: /video: vga → virtio/ },
  { change: 'graphics', desired: { ...base, graphics: 'vnc' }, action: 'restart', changed: /graphics: none → vnc/ },
  {
    // a VM started by a tend from before video devices (observe fills in video: none, what it ran with)
    change: 'video: the default device on a VM that had none',
    desired: base,
    observed: { applied: { ...base, video: 'none' } },
    action: 'restart',
    changed: /^video: none → vga$/,
  },
  {
    change: 'ports',
    desired: { ...base, ports: [{ hostAddress: '127.0.0.1', hostPort: 8080, guestPort: 80, protocol: 'tcp' }] },
    action: 'restart',
    changed: /ports/,
  },
  { change: 'network', desired: { ...base, network: { mode: 'none', bridge: null } }, action: 'restart', changed: /network/ },
  { change: 'devices', desired: { ...base, devices: [{ pci: '01:00.0', romFile: null }] }, action: 'restart', changed: /devices/ },
  { change: 'extra args', desired: { ...base, extraArgs: ['-no-hpet'] }, action: 'restart', changed: /extraArgs/ },
  { change: 'firmware', desired: { ...base, firmware: 'uefi' }, action: 'restart', changed: /firmware/ },
  {
    change: 'disk growth',
    desired: { ...base, disk: 20 },
    observed: { applied: { ...base, disk: 10 } },
    action: 'restart',
    changed: /disk: 10 → 20/,
  },
  {
    change: 'cloud-init content',
    desired: { ...base, cloudInit: { ...base.cloudInit!, packages: ['nginx'] } },
    action: 'reseed',
    changed: /cloudInit/,
  },
  {
    change: 'raw user-data file edited (same path)',
    desired: { ...base, userDataDigest: 'sha256:new' },
    observed: { applied: { ...base, userDataDigest: 'sha256:old' } },
    action: 'reseed',
    changed: /userDataDigest/,
  },
  {
    change: 'local image file replaced (same path)',
    desired: { ...base, imageDigest: '2:2' },
    observed: { applied: { ...base, imageDigest: '1:1' } },
    action: 'recreate-required',
    changed: /imageDigest/,
  },
  {
    change: 'image without --recreate',
    desired: { ...base, image: { ...base.image, ref: 'ubuntu:noble' } },
    action: 'recreate-required',
    changed: /image/,
  },
  {
    change: 'image with --recreate',
    desired: { ...base, image: { ...base.image, ref: 'ubuntu:noble' } },
    opts: { recreate: true, prune: false },
    action: 'recreate',
  },
  {
    change: 'image on a disposable VM',
    desired: { ...base, disposable: true, image: { ...base.image, ref: 'ubuntu:noble' } },
    action: 'recreate',
  },
  {
    change: 'disk shrink without --recreate',
    desired: { ...base, disk: 10 },
    observed: { applied: { ...base, disk: 20 } },
    action: 'recreate-required',
    changed: /shrink/,
  },
  {
    change: 'disk shrink with --recreate',
    desired: { ...base, disk: 10 },
    observed: { applied: { ...base, disk: 20 } },
    opts: { recreate: true, prune: false },
    action: 'recreate',
  },
  { change: 'never created', desired: base, observed: { exists: false, applied: null, power: 'stopped' }, action: 'create' },
  { change: 'stopped VM, desired running', desired: base, observed: { power: 'stopped', pid: null }, action: 'start' },
  {
    change: 'stopped VM with changed memory',
    desired: { ...base, memory: 4096 },
    observed: { power: 'stopped', pid: null },
    action: 'start',
    changed: /memory/,
  },
  { change: 'stop intent on a running VM', desired: base, observed: { intent: 'stopped' }, action: 'stop' },
  { change: 'stop intent on a stopped VM', desired: base, observed: { intent: 'stopped', power: 'stopped' }, action: 'none' },
  { change: 'desired run state stopped', desired: { ...base, runState: 'stopped' }, action: 'stop' },
  { change: 'hung QEMU', desired: base, observed: { power: 'unknown' }, action: 'restart' },
  { change: 'lost settings record', desired: base, observed: { applied: null, corrupt: ['applied.json'] }, action: 'reseed' },
];

for (const row of rows) {
  test(`plan: ${row.change} → ${row.action}`, () => {
    const o = obs(base, row.observed);
    const [entry] = plan(project(row.desired), observed(o), row.opts ?? noFlags);
    assert.equal(entry.action, row.action, JSON.stringify(entry));
    if (row.changed) assert.match(entry.changed.join('; '), row.changed);
    assert.ok(describeAction(entry).length > 0);
  });
}

test('plan: a RecreateRequired VM says how to proceed and lists what else is pending', () => {
  const desired = { ...base, memory: 2048, image: { ...base.image, ref: 'ubuntu:noble' } };
  const [entry] = plan(project(desired), observed(obs(base)), noFlags);
  assert.equal(entry.action, 'recreate-required');
  assert.match(entry.notes.join('\n'), /--recreate/);
  assert.match(entry.notes.join('\n'), /memory/);
});

test('plan: live changes are named in the notes', () => {
  const [entry] = plan(project({ ...base, restart: 'no' }), observed(obs(base)), noFlags);
  assert.match(entry.notes.join('\n'), /applied live: restart/);
});

test('plan: orphan is reported without --prune and pruned with it', () => {
  const gone = obs(spec('old'));
  const [o1] = plan(project(), observed(gone), noFlags);
  assert.deepEqual([o1.vm, o1.action], ['old', 'orphan']);
  assert.match(o1.notes[0], /--prune/);
  const [o2] = plan(project(), observed(gone), { recreate: false, prune: true });
  assert.deepEqual([o2.vm, o2.action], ['old', 'prune']);
});

test('plan: with nothing observed every VM is created', () => {
  const entries = plan(project(spec('a'), spec('b'), spec('c')), { vms: {} }, noFlags);
  assert.deepEqual(
    entries.map((e) => e.action),
    ['create', 'create', 'create'],
  );
});

test('plan: --name limits the plan to the named VMs', () => {
  const entries = plan(project(spec('a'), spec('b')), observed(obs(spec('zombie'))), { recreate: false, prune: true, names: ['b'] });
  assert.deepEqual(
    entries.map((e) => `${e.vm}:${e.action}`),
    ['b:create'],
  );
});

test('plan: field order in the recorded spec never reads as a change', () => {
  const reverse = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .reverse()
            .map(([k, x]) => [k, reverse(x)]),
        )
      : v;
  const reordered = reverse(base) as VmSpec;
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(base));
  const [entry] = plan(project(base), observed(obs(reordered)), noFlags);
  assert.equal(entry.action, 'none');
});

test('plan: is pure (same input, same output; inputs untouched)', () => {
  const p = project({ ...base, memory: 2048 });
  const o = observed(obs(base));
  const before = JSON.stringify([p, o]);
  assert.deepEqual(plan(p, o, noFlags), plan(p, o, noFlags));
  assert.equal(JSON.stringify([p, o]), before);
});

test('plan: a recreate drops snapshots, so it needs --recreate even when disposable, and says which', () => {
  const desired = { ...base, disposable: true, image: { ...base.image, ref: 'ubuntu:noble' } };
  const withSnaps = obs(base, { snapshots: ['clean', 'before-upgrade'] });
  const [held] = plan(project(desired), observed(withSnaps), noFlags);
  assert.equal(held.action, 'recreate-required');
  assert.match(held.notes.join('\n'), /drops its snapshots \(clean, before-upgrade\).*--recreate/);
  const [forced] = plan(project(desired), observed(withSnaps), { recreate: true, prune: false });
  assert.equal(forced.action, 'recreate');
  assert.match(forced.notes.join('\n'), /drops its snapshots: clean, before-upgrade/);
  const [plain] = plan(project(desired), observed(obs(base, { snapshots: [] })), noFlags);
  assert.equal(plain.action, 'recreate');
});

test('plan: the stop mode is applied live (read by the next stop)', () => {
  const [entry] = plan(project({ ...base, stopMode: 'save' }), observed(obs(base)), noFlags);
  assert.equal(entry.action, 'none');
  assert.match(entry.notes.join('\n'), /applied live: stopMode/);
});

test('plan: a clone running before its identity step finished is restarted with why, never adopted', () => {
  const why = /its warm clone's identity step did not finish \(tend was stopped during it\): restarted/;
  // running, paused (killed during the restore) or hung: restarted; the reason is carried to the stop's line
  for (const power of ['running', 'paused', 'unknown'] as const) {
    const [e] = plan(project(base), observed(obs(base, { power, clonePending: true })), noFlags);
    assert.equal(e.action, 'restart', `${power}: ${JSON.stringify(e)}`);
    assert.match(e.notes.join('\n'), why);
    assert.match(String(e.reason), /identity step did not finish/);
  }
  // also with its settings record lost (it would be reseeded and kept running otherwise)
  const [lost] = plan(project(base), observed(obs(base, { applied: null, clonePending: true })), noFlags);
  assert.deepEqual([lost.action, why.test(lost.notes.join('\n'))], ['restart', true]);
  // pending changes ride along
  const [mem] = plan(project({ ...base, memory: 4096 }), observed(obs(base, { clonePending: true })), noFlags);
  assert.equal(mem.action, 'restart');
  assert.match(mem.changed.join('; '), /memory/);
  // a new image it may not get: restarted on its disk all the same (not left running as the template), the recreate still pending
  const image = { ...base, image: { ...base.image, ref: 'ubuntu:noble' } };
  const [img] = plan(project(image), observed(obs(base, { clonePending: true })), noFlags);
  assert.equal(img.action, 'restart');
  assert.match(img.notes.join('\n'), /still needs a new disk \(image: .*--recreate/);
  // a recreate replaces the disk anyway
  const [rec] = plan(project(image), observed(obs(base, { clonePending: true })), { recreate: true, prune: false });
  assert.equal(rec.action, 'recreate');
  // a stopped clone not started yet is an ordinary start (its start restores the template); a stop stays a stop
  const [stopped] = plan(project(base), observed(obs(base, { power: 'stopped', pid: null, clonePending: true })), noFlags);
  assert.deepEqual([stopped.action, stopped.reason], ['start', undefined]);
  const [stop] = plan(project({ ...base, runState: 'stopped' }), observed(obs(base, { clonePending: true })), noFlags);
  assert.equal(stop.action, 'stop');
  // no clone.json: nothing to do
  const [done] = plan(project(base), observed(obs(base, { clonePending: false })), noFlags);
  assert.equal(done.action, 'none');
});
