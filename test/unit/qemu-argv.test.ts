import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import { accelOf, buildArgv, type ArgvInput } from '../../src/qemu/argv.js';
import { socketPath, UNIX_SOCKET_PATH_MAX } from '../../src/state/paths.js';

const paths = {
  disk: '/s/vms/web/disk.qcow2',
  seed: '/s/vms/web/seed.iso',
  pidfile: '/s/vms/web/qemu.pid',
  qmp: '/s/vms/web/qmp.sock',
  serial: '/s/vms/web/serial.sock',
  consoleLog: '/s/vms/web/console.log',
  volumes: { data: '/s/volumes/data.qcow2', cache: '/s/volumes/cache.qcow2' },
};

function input(draft: Partial<VmDraft> = {}, extra: Partial<ArgvInput> = {}): ArgvInput {
  const vm = applyDefaults({ name: 'web', image: { kind: 'path', ref: '/img.qcow2' }, ...draft } as VmDraft);
  return { vm, paths, accel: 'tcg', ports: [], sshPort: 40022, ...extra };
}

/** The value following each occurrence of `flag`. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

test('defaults: q35 with the chosen accelerator, max CPU under TCG, memory and cpus, no display', () => {
  const a = buildArgv(input({ cpus: 2, memory: 2048 }));
  assert.deepEqual(values(a, '-machine'), ['q35,accel=tcg']);
  assert.deepEqual(values(a, '-cpu'), ['max']);
  assert.deepEqual(values(a, '-smp'), ['2']);
  assert.deepEqual(values(a, '-m'), ['2048']);
  assert.deepEqual(values(a, '-display'), ['none']);
  assert.deepEqual(values(a, '-vga'), ['none']);
  assert.ok(!a.includes('-vnc'));
  assert.equal(accelOf(a), 'tcg');
});

test('KVM uses the host CPU; an explicit cpu model wins under either accelerator', () => {
  assert.deepEqual(values(buildArgv(input({}, { accel: 'kvm' })), '-cpu'), ['host']);
  assert.equal(accelOf(buildArgv(input({}, { accel: 'kvm' }))), 'kvm');
  assert.deepEqual(values(buildArgv(input({ cpuModel: 'Haswell' }, { accel: 'kvm' })), '-cpu'), ['Haswell']);
  assert.deepEqual(values(buildArgv(input({ cpuModel: 'Haswell' })), '-cpu'), ['Haswell']);
  assert.deepEqual(values(buildArgv(input({ machine: 'pc' })), '-machine'), ['pc,accel=tcg']);
});

test('disk is a virtio qcow2 drive, seed a read-only cdrom, pidfile, QMP and serial with a console log', () => {
  const a = buildArgv(input());
  const drives = values(a, '-drive');
  assert.ok(drives.some((d) => d.startsWith('if=virtio,file=/s/vms/web/disk.qcow2,format=qcow2')));
  assert.ok(drives.some((d) => d.includes('file=/s/vms/web/seed.iso') && d.includes('media=cdrom') && d.includes('readonly=on')));
  assert.deepEqual(values(a, '-pidfile'), ['/s/vms/web/qemu.pid']);
  assert.deepEqual(values(a, '-qmp'), ['unix:/s/vms/web/qmp.sock,server=on,wait=off']);
  const withEvents = buildArgv(input({}, { paths: { ...paths, qmpEvents: '/s/vms/web/qmp-events.sock' } }));
  assert.deepEqual(values(withEvents, '-qmp'), [
    'unix:/s/vms/web/qmp.sock,server=on,wait=off',
    'unix:/s/vms/web/qmp-events.sock,server=on,wait=off',
  ]);
  const chardev = values(a, '-chardev')[0];
  assert.match(chardev, /^socket,id=ser0,path=\/s\/vms\/web\/serial.sock,server=on,wait=off,logfile=\/s\/vms\/web\/console.log/);
  assert.deepEqual(values(a, '-serial'), ['chardev:ser0']);
  assert.ok(values(a, '-device').includes('virtio-rng-pci'));
});

test('no seed drive when cloud-init is off', () => {
  const a = buildArgv(input({ cloudInit: null }, { paths: { ...paths, seed: null } }));
  assert.ok(!values(a, '-drive').some((d) => d.includes('seed.iso')));
});

test('user networking forwards SSH and every port, on the address the spec names', () => {
  const a = buildArgv(
    input(
      {},
      {
        ports: [
          { guestPort: 80, protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080 },
          { guestPort: 53, protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 5353 },
        ],
      },
    ),
  );
  assert.deepEqual(values(a, '-netdev'), [
    'user,id=n0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:5353-:53',
  ]);
  assert.ok(values(a, '-device').includes('virtio-net-pci,netdev=n0'));
});

test('the SSH forward targets the guest sshd port from the spec', () => {
  const a = buildArgv(input({ ssh: { port: 2200 } }));
  assert.match(values(a, '-netdev')[0], /hostfwd=tcp:127\.0\.0\.1:40022-:2200/);
});

test('tap networking uses the bridge helper when a bridge is named, a plain tap otherwise; none has no NIC', () => {
  assert.deepEqual(values(buildArgv(input({ network: { mode: 'tap', bridge: 'br0' } })), '-netdev'), ['bridge,id=n0,br=br0']);
  assert.deepEqual(values(buildArgv(input({ network: { mode: 'tap' } })), '-netdev'), ['tap,id=n0,script=no,downscript=no']);
  const mac = '52:54:00:01:02:03';
  assert.ok(
    values(buildArgv(input({ network: { mode: 'tap', bridge: 'br0' } }, { tapMac: mac })), '-device').includes(
      `virtio-net-pci,netdev=n0,mac=${mac}`,
    ),
  );
  const none = buildArgv(input({ network: { mode: 'none' } }));
  assert.deepEqual(values(none, '-nic'), ['none']);
  assert.deepEqual(values(none, '-netdev'), []);
  assert.ok(!none.join(' ').includes('hostfwd'));
});

test('named volumes are extra virtio disks with their name as serial; :ro is read-only', () => {
  const a = buildArgv(
    input({
      volumes: [
        { kind: 'named', name: 'data', target: '/data', readOnly: false },
        { kind: 'named', name: 'cache', target: '/cache', readOnly: true },
      ],
    }),
  );
  const drives = values(a, '-drive');
  assert.ok(drives.includes('if=none,id=vol-data,file=/s/volumes/data.qcow2,format=qcow2'));
  assert.ok(drives.includes('if=none,id=vol-cache,file=/s/volumes/cache.qcow2,format=qcow2,readonly=on'));
  const devs = values(a, '-device');
  // addr: high PCI slots keep the boot disk first in the BIOS boot order (src/qemu/volumes.ts)
  assert.ok(devs.includes('virtio-blk-pci,drive=vol-data,serial=data,addr=0x1e'));
  assert.ok(devs.includes('virtio-blk-pci,drive=vol-cache,serial=cache,addr=0x1d'));
});

test('extra args are appended verbatim, last, as separate argv entries (no shell)', () => {
  const extra = ['-device', 'virtio-balloon', '-smbios', 'type=1,serial=$(rm -rf /)'];
  const a = buildArgv(input({ extraArgs: extra }));
  assert.deepEqual(a.slice(-4), extra);
});

test('PCI passthrough devices, with an optional ROM file', () => {
  const a = buildArgv(
    input({
      devices: [
        { pci: '0000:01:00.0', romFile: '/roms/gpu.rom' },
        { pci: '02:00.1', romFile: null },
      ],
    }),
  );
  const devs = values(a, '-device');
  assert.ok(devs.includes('vfio-pci,host=0000:01:00.0,romfile=/roms/gpu.rom'));
  assert.ok(devs.includes('vfio-pci,host=02:00.1'));
});

test("UEFI adds the read-only code and the VM's own vars as pflash; secure boot adds SMM", () => {
  const fw = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/s/vms/web/efi-vars.fd', secure: false };
  const a = buildArgv(input({ firmware: 'uefi' }, { firmware: fw }));
  const drives = values(a, '-drive');
  assert.ok(drives.includes('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd'));
  assert.ok(drives.includes('if=pflash,format=raw,unit=1,file=/s/vms/web/efi-vars.fd'));
  const s = buildArgv(input({ firmware: 'uefi-secure' }, { firmware: { ...fw, secure: true } }));
  assert.deepEqual(values(s, '-machine'), ['q35,accel=tcg,smm=on']);
  assert.ok(values(s, '-global').includes('driver=cfi.pflash01,property=secure,value=on'));
  assert.throws(() => buildArgv(input({ firmware: 'uefi' })), /OVMF/);
  assert.ok(!values(buildArgv(input()), '-drive').some((d) => d.includes('pflash')));
});

test('commas in paths are escaped the QEMU way', () => {
  const a = buildArgv(input({}, { paths: { ...paths, disk: '/s/a,b/disk.qcow2' } }));
  assert.ok(values(a, '-drive').some((d) => d.startsWith('if=virtio,file=/s/a,,b/disk.qcow2,format=qcow2')));
});

test('long state paths: sockets passed to QEMU fit the 108-byte limit', () => {
  const projDir = '/' + 'very-long-state-directory-name/'.repeat(5) + 'projects/demo-12345678';
  const env = { XDG_RUNTIME_DIR: '/run/user/1000' };
  const qmp = socketPath(projDir, 'web', 'qmp', env);
  const serial = socketPath(projDir, 'web', 'serial', env);
  assert.ok(Buffer.byteLength(qmp) <= UNIX_SOCKET_PATH_MAX);
  assert.notEqual(qmp, serial);
  const a = buildArgv(input({}, { paths: { ...paths, qmp, serial } }));
  assert.deepEqual(values(a, '-qmp'), [`unix:${qmp},server=on,wait=off`]);
  assert.ok(values(a, '-chardev')[0].includes(`path=${serial},`));
});
