/**
 * qemu:///session for a normal user (ov's default URI), on a host without systemd or D-Bus: as a
 * non-root user (created here: `tendsess`) with its own XDG_RUNTIME_DIR, the first connection
 * autostarts that user's libvirtd (`libvirtd --timeout=120`, libvirt's own autostart), and tend's
 * libvirt backend defines, starts (QEMU running as the user, the SSH forward on 127.0.0.1),
 * observes and destroys a VM there. Real QEMU under TCG boots only its BIOS (a blank disk: no guest
 * OS, no boot to wait for). Needs root to create the user (CI runs as root).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const USER = 'tendsess';
const ROOT = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'tend-session-'));
chmodSync(work, 0o755);
after(() => rmSync(work, { recursive: true, force: true }));

function ensureUser(): { uid: number; gid: number; home: string } {
  assert.equal(process.getuid?.(), 0, 'this test creates a user: run it as root (CI does)');
  if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['-m', '-s', '/bin/sh', USER]);
  const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim());
  return { uid, gid, home: `/home/${USER}` };
}

const SCRIPT = `
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
const { applyDefaults } = await import(${JSON.stringify(join(ROOT, 'schemas/defaults.ts'))});
const { createLibvirtBackend } = await import(${JSON.stringify(join(ROOT, 'src/libvirt/backend.ts'))});
const { probeSocket } = await import(${JSON.stringify(join(ROOT, 'src/libvirt/connect.ts'))});
const { domainName } = await import(${JSON.stringify(join(ROOT, 'src/libvirt/names.ts'))});
const dir = process.argv[2];
const env = process.env;
const out = {};
out.version = execFileSync('virsh', ['-c', 'qemu:///session', 'version'], { encoding: 'utf8', env });
out.socket = await probeSocket('qemu:///session', env);
const base = join(dir, 'base.qcow2');
execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
const vm = applyDefaults({ name: 'sess', image: { kind: 'path', ref: base }, accel: 'tcg', memory: 128, cloudInit: null, stopGracePeriod: 1 });
const project = { name: 'sesstest', dir: join(dir, 'project'), files: [], vms: [vm], volumes: {} };
const backend = createLibvirtBackend({ stateRoot: join(dir, 'state'), uri: 'qemu:///session', env, termGraceMs: 2000 });
try {
  await backend.prepare(project, vm, { recreateDisk: false });
  const r = await backend.start(project, vm);
  out.pid = r.pid;
  out.sshPort = r.sshPort;
  out.owner = readFileSync('/proc/' + r.pid + '/status', 'utf8').match(/^Uid:\\s+(\\d+)/m)[1];
  const o = (await backend.observe(project)).vms.sess;
  out.power = o.power;
  out.observedPid = o.pid;
  out.appliedName = o.applied?.name ?? null;
  out.listed = execFileSync('virsh', ['-c', 'qemu:///session', 'list', '--name'], { encoding: 'utf8', env }).trim();
  out.domain = domainName(project, 'sess');
  await backend.destroy(project, 'sess');
  out.after = execFileSync('virsh', ['-c', 'qemu:///session', 'list', '--all', '--name'], { encoding: 'utf8', env }).trim();
} finally {
  backend.close();
}
console.log(JSON.stringify(out));
`;

test(
  'qemu:///session as a non-root user: the daemon autostarts without systemd; define, start, observe, destroy',
  { timeout: 240_000 },
  () => {
    const u = ensureUser();
    const runtime = join(work, 'run');
    const dir = join(work, 'vm');
    for (const d of [runtime, dir]) {
      execFileSync('mkdir', ['-p', d]);
      chownSync(d, u.uid, u.gid);
      chmodSync(d, 0o700);
    }
    const script = join(work, 'session.mts');
    writeFileSync(script, SCRIPT);
    chmodSync(script, 0o644);
    const r = spawnSync(
      'runuser',
      [
        '-u',
        USER,
        '--',
        'env',
        '-i',
        `HOME=${u.home}`,
        `USER=${USER}`,
        `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
        `XDG_RUNTIME_DIR=${runtime}`,
        process.execPath,
        '--import',
        'tsx',
        script,
        dir,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 200_000 },
    );
    assert.equal(r.status, 0, `as ${USER}: ${r.stderr}\n${r.stdout}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, string | number | null>;
    // the user's libvirtd and virtlogd leave by themselves (--timeout=120); a QEMU left by a failure goes now
    after(() => {
      if (typeof out.pid === 'number' && out.pid > 0 && out.after !== '') spawnSync('kill', ['-9', String(out.pid)]);
    });
    assert.match(String(out.version), /Running hypervisor: QEMU/, 'the session daemon answers');
    assert.match(String(out.socket), new RegExp(`^${runtime}/libvirt/(virtqemud|libvirt)-sock$`), "the socket tend's auto probe finds");
    assert.equal(out.owner, String(u.uid), 'QEMU runs as the user, not root');
    assert.equal(out.power, 'running');
    assert.equal(out.observedPid, out.pid);
    assert.equal(out.appliedName, 'sess', 'the spec read back from the session domain');
    assert.equal(out.listed, out.domain);
    assert.equal(out.after, '', 'destroy leaves no domain');
  },
);
