/**
 * Backend selection (src/backend/select.ts) and the per-VM dispatcher (src/backend/dispatch.ts)
 * over two recording fake backends: which backend each call reaches, moves between backends,
 * observation merged by the record in each VM's folder, `auto` by a real unix socket, and a
 * pinned libvirt without a daemon failing at once with the fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { Observed, ObservedVm } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';
import { createDispatcher } from '../../src/backend/dispatch.js';
import { readBackendRecord, writeBackendRecord } from '../../src/backend/record.js';
import { wantedBackend } from '../../src/backend/select.js';
import { defaultUri } from '../../src/libvirt/connect.js';

const defaultUriHere = defaultUri();
import type { LibvirtBackend } from '../../src/libvirt/backend.js';
import { projectDir, vmDir } from '../../src/state/paths.js';
import { rejectsWith } from '../helpers/rejects.js';

test('selection: flag, then the file pin, then environment, then the file auto / the dialect default; a URI alone selects libvirt', () => {
  const env = { TEND_BACKEND: 'libvirt', TEND_LIBVIRT_URI: 'qemu:///session' };
  assert.deepEqual(wantedBackend({}, {}, {}), { kind: 'qemu', uri: wantedBackend({}, {}, {}).uri, source: 'default' });
  assert.deepEqual(wantedBackend({}, {}, env), { kind: 'libvirt', uri: 'qemu:///session', source: 'env' });
  assert.deepEqual(wantedBackend({ backend: 'qemu' }, {}, env), { kind: 'qemu', uri: 'qemu:///session', source: 'file' });
  assert.deepEqual(wantedBackend({ backend: 'qemu' }, { backend: 'auto' }, env), { kind: 'auto', uri: 'qemu:///session', source: 'flag' });
  assert.deepEqual(wantedBackend({ connect: 'qemu:///system' }, {}, {}), { kind: 'libvirt', uri: 'qemu:///system', source: 'file' });
  assert.deepEqual(wantedBackend({ backend: 'qemu' }, { connect: 'qemu+ssh://root@h/system' }, {}), {
    kind: 'libvirt',
    uri: 'qemu+ssh://root@h/system',
    source: 'flag',
  });
  // a flag beats a VM's own pin
  assert.deepEqual(wantedBackend({ backend: 'libvirt' }, { backend: 'qemu' }, {}).kind, 'qemu');
  assert.deepEqual(wantedBackend({ backend: 'libvirt' }, { backend: 'qemu' }, {}).source, 'flag');
  // a pin beats the environment
  assert.deepEqual(wantedBackend({ backend: 'libvirt' }, {}, { TEND_BACKEND: 'qemu' }).kind, 'libvirt');
  // `backend: auto` (vms.yml's default, written or not) pins nothing: the environment overrides it
  assert.deepEqual(wantedBackend({ backend: 'auto' }, {}, { TEND_BACKEND: 'qemu' }), { kind: 'qemu', uri: defaultUriHere, source: 'env' });
  assert.deepEqual(wantedBackend({ backend: 'auto' }, {}, {}), { kind: 'auto', uri: defaultUriHere, source: 'default' });
  assert.deepEqual(wantedBackend({ backend: 'auto' }, { backend: 'qemu' }, {}).kind, 'qemu');
  // no key at all (VMFile.kdl, compose): qemu
  assert.deepEqual(wantedBackend({}, {}, {}).kind, 'qemu');
  assert.throws(
    () => wantedBackend({}, {}, { TEND_BACKEND: 'kvm' }),
    (e: unknown) => e instanceof Error && /\$TEND_BACKEND must be one of qemu, libvirt, auto/.test(e.message),
  );
});

interface Call {
  backend: string;
  method: string;
  vm: string;
}

/** A fake backend that records calls; "running" is a set of VM names. */
function fake(name: string, calls: Call[], stateRoot: string, opts: { failObserve?: BackendError } = {}): LibvirtBackend {
  const running = new Set<string>();
  const prepared = new Set<string>();
  const rec = (method: string, vm: string): void => {
    calls.push({ backend: name, method, vm });
  };
  const obs = (vm: string): ObservedVm => ({
    name: vm,
    exists: true,
    power: running.has(vm) ? 'running' : 'stopped',
    pid: running.has(vm) ? 4242 : null,
    applied: null,
    diskImage: null,
    accel: null,
    ports: {},
    sshPort: null,
    intent: null,
    provisioned: [],
    startedAt: null,
    corrupt: [],
  });
  return {
    uri: name,
    async observe(): Promise<Observed> {
      if (opts.failObserve) throw opts.failObserve;
      return { vms: Object.fromEntries([...prepared].map((v) => [v, obs(v)])) };
    },
    locate: () => ({ backend: name }),
    async prepare(project: Project, vm: VmSpec) {
      rec('prepare', vm.name);
      prepared.add(vm.name);
      if (name.startsWith('qemu:') || name.startsWith('test:')) {
        await mkdir(vmDir(projectDir(stateRoot, project.name, project.dir), vm.name), { recursive: true });
        await writeBackendRecord(projectDir(stateRoot, project.name, project.dir), vm.name, { backend: 'libvirt', uri: name });
      }
    },
    async start(_p, vm) {
      rec('start', vm.name);
      running.add(vm.name);
      return { pid: 4242, accel: 'tcg', sshPort: 2222, ports: {} };
    },
    async stop(_p, n) {
      rec('stop', n);
      running.delete(n);
    },
    async suspend(_p, n) {
      rec('suspend', n);
    },
    async resume(_p, n) {
      rec('resume', n);
    },
    async destroy(_p, n) {
      rec('destroy', n);
      prepared.delete(n);
      running.delete(n);
    },
    async release(_p, n) {
      rec('release', n);
      prepared.delete(n);
    },
    async setIntent(_p, n) {
      rec('setIntent', n);
    },
    watchExit: () => () => undefined,
    attachConsole: async () => 'detached',
    listVolumes: async () => [{ name: `on-${name}`, path: `${name}:/v`, allocated: null, virtualSize: null }],
    volumePath: (_p, n) => `${name}:/${n}`,
    async removeVolumes(_p, names) {
      rec('removeVolumes', names.join(','));
    },
    close: () => undefined,
  };
}

async function setup(draft: Partial<VmDraft> = {}, env: NodeJS.ProcessEnv = {}, failLibvirt?: BackendError) {
  const stateRoot = await mkdtemp(join(tmpdir(), 'tend-dispatch-'));
  const calls: Call[] = [];
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: '/img.qcow2' }, ...draft } as VmDraft);
  const project: Project = { name: 'demo', dir: '/p/demo', files: [], vms: [vm], volumes: {} };
  const qemu = fake('qemu', calls, stateRoot);
  const libvirts = new Map<string, LibvirtBackend>();
  const d = createDispatcher({
    stateRoot,
    env,
    qemu,
    libvirt: (uri) => {
      let b = libvirts.get(uri);
      if (!b) libvirts.set(uri, (b = fake(uri, calls, stateRoot, failLibvirt ? { failObserve: failLibvirt } : {})));
      return b;
    },
  });
  const pd = projectDir(stateRoot, project.name, project.dir);
  return { d, calls, project, vm, pd, stateRoot };
}

test('a VM whose file selects libvirt is prepared and started there; commands naming it follow its record', async () => {
  const { d, calls, project, vm, pd } = await setup({ backend: 'libvirt', connect: 'qemu:///system' });
  await d.prepare(project, vm, { recreateDisk: false });
  await d.start(project, vm);
  await d.stop(project, 'web', { timeout: 1 });
  await d.destroy(project, 'web');
  assert.deepEqual(
    calls.map((c) => `${c.backend} ${c.method}`),
    ['qemu:///system prepare', 'qemu:///system start', 'qemu:///system stop', 'qemu:///system destroy'],
  );
  assert.deepEqual(await readBackendRecord(pd, 'web'), { backend: 'libvirt', uri: 'qemu:///system' });
  assert.deepEqual(await d.placement(project, 'web'), { backend: 'libvirt', uri: 'qemu:///system' });
});

test('without a file or flag choice an existing VM stays where it is; $TEND_BACKEND only places new VMs', async () => {
  const { d, calls, project, vm, pd } = await setup({}, { TEND_BACKEND: 'qemu' });
  await mkdir(vmDir(pd, 'web'), { recursive: true });
  await writeBackendRecord(pd, 'web', { backend: 'libvirt', uri: 'qemu:///system' });
  await d.start(project, vm);
  assert.deepEqual(calls, [{ backend: 'qemu:///system', method: 'start', vm: 'web' }]);
});

test('a stopped VM moves when its file selects another backend: the old one releases it (disk kept)', async () => {
  const { d, calls, project, vm, pd } = await setup({ backend: 'qemu' });
  await mkdir(vmDir(pd, 'web'), { recursive: true });
  await writeBackendRecord(pd, 'web', { backend: 'libvirt', uri: 'qemu:///system' });
  await d.prepare(project, vm, { recreateDisk: false });
  assert.deepEqual(
    calls.map((c) => `${c.backend} ${c.method}`),
    ['qemu:///system release', 'qemu prepare'],
  );
  assert.deepEqual(await readBackendRecord(pd, 'web'), { backend: 'qemu' });
});

test('a running VM is never moved: it stays on its backend until stopped', async () => {
  const { d, calls, project, vm } = await setup({ backend: 'libvirt', connect: 'qemu:///system' });
  await d.prepare(project, vm, { recreateDisk: false });
  await d.start(project, vm);
  calls.length = 0;
  const toQemu = { ...vm, backend: 'qemu' as const };
  await d.prepare(project, toQemu, { recreateDisk: false });
  assert.deepEqual(calls, [{ backend: 'qemu:///system', method: 'prepare', vm: 'web' }]);
});

test('observe takes each VM from the backend that holds it', async () => {
  const { d, project, vm, pd } = await setup({ backend: 'libvirt', connect: 'qemu:///system' });
  const other = applyDefaults({ name: 'db', image: { kind: 'path', ref: '/img.qcow2' } } as VmDraft);
  const p2 = { ...project, vms: [vm, other] };
  await d.prepare(p2, vm, { recreateDisk: false });
  await d.start(p2, vm);
  await d.prepare(p2, other, { recreateDisk: false });
  const o = await d.observe(p2);
  assert.deepEqual(Object.keys(o.vms).sort(), ['db', 'web']);
  assert.equal(o.vms.web.power, 'running', 'web from libvirt (running there)');
  assert.equal(o.vms.db.power, 'stopped');
  assert.deepEqual(await readBackendRecord(pd, 'db'), { backend: 'qemu' });
});

test('a pinned libvirt without a daemon fails at the first observation, naming the VM and the fix', async () => {
  const down = new BackendError(
    'LibvirtUnavailable',
    'libvirt does not answer on qemu:///system (Failed to connect socket): start libvirt',
  );
  const { d, project } = await setup({ backend: 'libvirt', connect: 'qemu:///system' }, {}, down);
  await assert.rejects(
    d.observe(project),
    rejectsWith(
      'LibvirtUnavailable',
      /^web: backend libvirt selected but libvirt does not answer on qemu:\/\/\/system .*libvirtd -d.*backend: qemu/,
    ),
  );
});

test('auto: libvirt when its session socket answers (virtqemud-sock first), else qemu', async () => {
  const runtime = await mkdtemp(join(tmpdir(), 'tend-rt-'));
  const env = { XDG_RUNTIME_DIR: runtime };
  {
    const { d, calls, project, vm } = await setup({ backend: 'auto', connect: 'qemu:///session' }, env);
    await d.start(project, vm);
    assert.deepEqual(calls, [{ backend: 'qemu', method: 'start', vm: 'web' }], 'no socket: qemu');
  }
  await mkdir(join(runtime, 'libvirt'), { recursive: true });
  const srv = createServer((s) => s.end());
  await new Promise<void>((r) => srv.listen(join(runtime, 'libvirt', 'virtqemud-sock'), r));
  try {
    const { d, calls, project, vm } = await setup({ backend: 'auto', connect: 'qemu:///session' }, env);
    await d.start(project, vm);
    assert.deepEqual(calls, [{ backend: 'qemu:///session', method: 'start', vm: 'web' }], 'socket answers: libvirt');
  } finally {
    srv.close();
  }
});

test("named volumes: a remote host keeps its VMs' volumes in its pool; one volume is never on two hosts", async () => {
  const remote = 'qemu+ssh://root@kvm1/system';
  const data = [{ kind: 'named' as const, name: 'data', target: '/data', readOnly: false }];
  const { d, calls, project, vm } = await setup({ backend: 'libvirt', connect: remote, volumes: data });
  project.volumes = { data: { size: 5 } };
  // where `volume inspect` says it is before it exists, where it is listed, what down -v removes
  assert.equal(d.volumePath(project, 'data'), `${remote}:/data`);
  assert.deepEqual((await d.listVolumes(project)).map((v) => v.name).sort(), ['on-qemu', `on-${remote}`].sort());
  await d.removeVolumes(project, ['data']);
  assert.deepEqual(
    calls.filter((c) => c.method === 'removeVolumes').map((c) => c.backend),
    ['qemu', remote],
  );
  // a second VM on this machine mounting the same volume: refused before any action, either way round
  const db = applyDefaults({ name: 'db', image: { kind: 'path', ref: '/img.qcow2' }, volumes: data } as VmDraft);
  project.vms.push(db);
  calls.length = 0;
  await assert.rejects(
    d.prepare(project, db, { recreateDisk: false }),
    rejectsWith('VolumeOnTwoHosts', /db: volume "data" would be on this machine, but web mounts it on qemu\+ssh/),
  );
  await assert.rejects(
    d.prepare(project, vm, { recreateDisk: false }),
    rejectsWith('VolumeOnTwoHosts', /web: volume "data" would be on qemu\+ssh:\/\/root@kvm1\/system, but db mounts it on this machine/),
  );
  assert.deepEqual(calls, [], 'nothing was prepared');
});
