/**
 * End to end over TAP networking, on the real Debian 12 guest image: inside a network namespace
 * this test creates (a bridge br0 on 10.78.0.1/24 with dnsmasq serving DHCP, its lease file in a
 * temp dir), the built CLI runs `tend up` on a VMFile.kdl whose VM is on br0. QEMU joins the
 * bridge through qemu-bridge-helper (allowed in /etc/qemu/bridge.conf, restored afterwards), the
 * guest takes a DHCP lease, and tend finds it by the VM's MAC ($TEND_LEASE_FILES names the lease
 * file): readiness (SSH, cloud-init), `exec`, `ssh`, `ps` all go to the guest's own address.
 *
 * The VM is `warm`, so its first Ready keeps a template; a second VM added to the file then starts
 * from it (a restore, no boot of its own) and, while the first runs on, takes its own MAC and
 * DHCP lease on the bridge (the identity step goes through the warm VM's management NIC, the TAP
 * NIC's link down until its MAC is the clone's): its own address, hostname, machine-id and host key.
 * A sniffer on the namespace's interfaces checks that no frame with the template's MAC entered the
 * bridge by the clone's port (without the link down, the restored guest's announcements did).
 *
 * Needs root (network namespaces, bridge.conf), iproute2, dnsmasq-base, qemu-system-x86 (the
 * bridge helper), python3 (the sniffer): scripts/deps.sh installs them; CI runs as root.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { CLI_MAIN, findImage, killQemuMentioning, tempProject, type CliResult } from './helpers.js';

const BRIDGE_CONF = '/etc/qemu/bridge.conf';

/**
 * Python (AF_PACKET, all interfaces): appends the interface name of every frame that comes in
 * with source MAC argv[1] to the file argv[2] (frames the host forwards out are left out).
 */
const SNIFFER = [
  'import socket, sys',
  'mac = bytes.fromhex(sys.argv[1].replace(":", ""))',
  'out = open(sys.argv[2], "a", buffering=1)',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))',
  'while True:',
  '    data, addr = s.recvfrom(65535)',
  '    if data[6:12] == mac and addr[2] != socket.PACKET_OUTGOING and addr[0] != "br0":',
  '        out.write(addr[0] + "\\n")',
].join('\n');

function sh(cmd: string[]): string {
  const r = spawnSync(cmd[0] as string, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} -> ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Makes qemu-bridge-helper accept br0; returns how to put bridge.conf back as it was. */
function allowBridge(bridge: string): () => void {
  const dir = '/etc/qemu';
  const dirExisted = existsSync(dir);
  const before = existsSync(BRIDGE_CONF) ? { text: readFileSync(BRIDGE_CONF, 'utf8'), mode: statSync(BRIDGE_CONF).mode & 0o7777 } : null;
  const allows = (line: string): boolean => {
    const [verb, what] = line.trim().split(/\s+/);
    return verb === 'allow' && (what === bridge || what === 'all');
  };
  if (before?.text.split('\n').some(allows)) return () => {};
  if (!dirExisted) mkdirSync(dir, { mode: 0o755 });
  const text = `${before && before.text !== '' && !before.text.endsWith('\n') ? `${before.text}\n` : (before?.text ?? '')}allow ${bridge}\n`;
  writeFileSync(BRIDGE_CONF, text);
  // the helper is setuid root: it wants its ACL root-owned and not writable by others
  chownSync(BRIDGE_CONF, 0, 0);
  chmodSync(BRIDGE_CONF, 0o644);
  return () => {
    if (before) {
      writeFileSync(BRIDGE_CONF, before.text);
      chmodSync(BRIDGE_CONF, before.mode);
    } else {
      rmSync(BRIDGE_CONF, { force: true });
      if (!dirExisted) rmdirSync(dir);
    }
  };
}

test(
  'TAP on a bridge: tend up reaches Ready over the DHCP address; exec, ssh and ps use it; a warm clone gets its own MAC and lease; down --destroy cleans up',
  { timeout: 1_200_000 },
  async (t) => {
    assert.equal(process.getuid?.(), 0, 'this test creates a network namespace and edits /etc/qemu/bridge.conf: run it as root (CI does)');
    assert.ok(existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run "npm run build" first`);
    const image = await findImage();
    const ns = `tend-e2e-tap-${process.pid % 100000}`;
    const vmKdl = (name: string, hostname: string): string[] => [
      `vm "${name}" {`,
      `    image "${image}"`,
      '    vcpus 1',
      '    memory 512',
      '    warm #true',
      '    network "tap" {',
      '        bridge "br0"',
      '    }',
      '    cloud-init {',
      `        hostname "${hostname}"`,
      '    }',
      '}',
    ];
    const p = await tempProject({ 'VMFile.kdl': [...vmKdl('tapvm', 'tap-host'), ''].join('\n') });
    const leases = join(p.scratch, 'dnsmasq.leases');
    const pids: number[] = [];
    let restoreConf = (): void => {};
    t.after(async () => {
      await killQemuMentioning(p.stateDir);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
      restoreConf();
      await p.cleanup();
    });

    // The namespace: a bridge with an address, and dnsmasq serving DHCP on it.
    sh(['ip', 'netns', 'add', ns]);
    const inNs = (...c: string[]): string => sh(['ip', 'netns', 'exec', ns, ...c]);
    inNs('ip', 'link', 'set', 'lo', 'up');
    inNs('ip', 'link', 'add', 'br0', 'type', 'bridge');
    inNs('ip', 'addr', 'add', '10.78.0.1/24', 'dev', 'br0');
    inNs('ip', 'link', 'set', 'br0', 'up');
    const dnsmasq = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--port=0',
        '--interface=br0',
        '--bind-dynamic',
        '--dhcp-range=10.78.0.50,10.78.0.99,1h',
        `--dhcp-leasefile=${leases}`,
        `--pid-file=${join(p.scratch, 'dnsmasq.pid')}`,
        '--log-dhcp',
        `--log-facility=${join(p.scratch, 'dnsmasq.log')}`,
      ],
      { stdio: 'ignore' },
    );
    if (dnsmasq.pid) pids.push(dnsmasq.pid);
    restoreConf = allowBridge('br0');

    const cli = async (args: string[]): Promise<CliResult> => {
      const r = await execa('ip', ['netns', 'exec', ns, process.execPath, CLI_MAIN, ...args], {
        cwd: p.dir,
        env: { ...process.env, TEND_STATE_DIR: p.stateDir, TEND_LEASE_FILES: leases, NO_COLOR: '1' },
        stdin: 'ignore',
        reject: false,
        timeout: 900_000,
      });
      return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    };
    const ok = async (args: string[]): Promise<CliResult> => {
      const r = await cli(args);
      const dhcp = existsSync(join(p.scratch, 'dnsmasq.log'))
        ? readFileSync(join(p.scratch, 'dnsmasq.log'), 'utf8').split('\n').slice(-15).join('\n')
        : '(no dnsmasq log)';
      assert.equal(r.code, 0, `tend ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\ndnsmasq: ${dhcp}`);
      return r;
    };

    // up: readiness waits for the address in the banner stage, then SSH and cloud-init over it.
    const started = Date.now();
    const up = await ok(['up']);
    t.diagnostic(`TAP guest Ready in ${Math.round((Date.now() - started) / 1000)} s`);
    const said = up.stdout + up.stderr;
    assert.match(said, /waiting for the guest's address on br0 \(MAC 52:54:00(:[0-9a-f]{2}){3}\)/);
    assert.match(said, /address 10\.78\.0\.\d+ \(from [^)]+\): waiting for SSH on 10\.78\.0\.\d+:22/);
    const lease = readFileSync(leases, 'utf8');
    assert.match(lease, /10\.78\.0\.\d+/, 'the guest took a DHCP lease');

    // exec runs in the guest, which has its address on the bridge's subnet.
    const addr = await ok(['exec', 'tapvm', '--', 'ip', '-4', 'addr']);
    const inet = /inet (10\.78\.0\.(\d+))\/24/.exec(addr.stdout);
    assert.ok(inet, `no 10.78.0.0/24 address in the guest:\n${addr.stdout}`);
    assert.ok(Number(inet[2]) >= 50 && Number(inet[2]) <= 99, `${inet[1]} is not from the DHCP range`);
    assert.equal((await ok(['exec', 'tapvm', '--', 'hostname'])).stdout.trim(), 'tap-host');

    // ps shows where SSH reaches it; the system ssh gets there too, with the pinned host key.
    const ps = JSON.parse((await ok(['ps', '--json'])).stdout) as { vms: { name: string; ssh: string | null; ready: boolean }[] };
    assert.deepEqual(
      ps.vms.map((v) => [v.name, v.ssh, v.ready]),
      [['tapvm', `${inet[1]}:22`, true]],
    );
    const ssh = await ok(['ssh', 'tapvm', '--', 'cat', '/etc/hostname']);
    assert.equal(ssh.stdout.trim(), 'tap-host');

    // A warm clone on the bridge: tapvm's first Ready kept a template, a second VM restores it.
    assert.match(said, /warm template [0-9a-f]{16} kept/, 'the first Ready of the warm TAP VM keeps a template');
    await writeFile(join(p.dir, 'VMFile.kdl'), [...vmKdl('tapvm', 'tap-host'), ...vmKdl('tapclone', 'tap-clone'), ''].join('\n'));
    // Every frame with the template's MAC as its source, and the port it entered by: until its
    // identity step, the clone's guest has that MAC, and none of its frames may reach the bridge.
    const templateMac = /on br0 \(MAC (52:54:00(?::[0-9a-f]{2}){3})\)/.exec(said)?.[1];
    assert.ok(templateMac, said);
    const tapvmPort = /^\d+: ([^:@]+)/.exec(inNs('ip', '-o', 'link', 'show', 'master', 'br0'))?.[1];
    assert.ok(tapvmPort, "tapvm's TAP device on br0");
    const seenFile = join(p.scratch, 'template-mac-frames');
    writeFileSync(seenFile, '');
    const sniffer = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', SNIFFER, templateMac, seenFile], { stdio: 'ignore' });
    if (sniffer.pid) pids.push(sniffer.pid);
    await new Promise((r) => setTimeout(r, 1000));
    const cloneStarted = Date.now();
    const up2 = await ok(['up']);
    const said2 = up2.stdout + up2.stderr;
    t.diagnostic(`TAP clone Ready in ${((Date.now() - cloneStarted) / 1000).toFixed(1)} s (tend up)`);
    assert.match(said2, /creating disk over warm template [0-9a-f]{16}/);
    const made = /TAP MAC (52:54:00(?::[0-9a-f]{2}){3}) and DHCP address \((10\.78\.0\.\d+)\/24\)/.exec(said2);
    assert.ok(made, `the clone's identity step names its MAC and lease:\n${said2}`);
    t.diagnostic(/warm clone of template[^\n]*/.exec(said2)?.[0] ?? '');
    // per VM: the NIC on the bridge's subnet, its MAC and address; every 10.78 address; identity
    const ident = async (vm: string) => {
      const out = (
        await ok([
          'exec',
          vm,
          '--',
          'sh',
          '-c',
          'dev=$(ip -4 -o addr show | awk \'$4 ~ /^10[.]78[.]0[.]/ {print $2; exit}\'); echo "$(cat /sys/class/net/$dev/address) $(ip -4 -o addr show | awk \'$4 ~ /^10[.]78[.]0[.]/ {print $4}\' | tr "\\n" " ")"; hostname; cat /etc/machine-id; cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub; ip route show default; ip -6 route show default',
        ])
      ).stdout.trim();
      const [net, hostname, machineId, hostKey, ...routes] = out.split('\n');
      const [mac, ...addrs] = (net ?? '').trim().split(/\s+/);
      return { mac, addrs, hostname, machineId, hostKey, routes };
    };
    const a = await ident('tapvm');
    const c = await ident('tapclone');
    assert.deepEqual(a.addrs, [`${inet[1]}/24`], 'tapvm keeps its address');
    // the template's MAC came in by tapvm's port only (its replies to the exec above), never by the clone's
    sniffer.kill('SIGKILL');
    const ports = readFileSync(seenFile, 'utf8').split('\n').filter(Boolean);
    assert.ok(ports.includes(tapvmPort), `the sniffer saw tapvm's frames on ${tapvmPort}: ${ports.join(' ')}`);
    assert.deepEqual([...new Set(ports)], [tapvmPort], "no frame with the template's MAC entered the bridge by another port");
    // the management NIC carries tend's SSH only: the default routes (IPv4, none for IPv6) are the bridge's
    for (const v of [a, c]) assert.deepEqual(v.routes, ['default via 10.78.0.1 dev eth0'], JSON.stringify(v.routes));
    assert.equal(c.mac, made[1], "the clone's NIC has the clone's own MAC");
    assert.notEqual(c.mac, a.mac, "not the template's MAC");
    assert.deepEqual(c.addrs, [`${made[2]}/24`], 'the clone has one address on the bridge: its own lease');
    assert.notEqual(made[2], inet[1], "not the template's address");
    assert.equal(c.hostname, 'tap-clone');
    assert.notEqual(c.machineId, a.machineId, 'machine-ids differ');
    assert.notEqual(c.hostKey, a.hostKey, 'host keys differ');
    // dnsmasq leased each MAC its own address; the template's lease was not released
    const leased = readFileSync(leases, 'utf8');
    assert.match(leased, new RegExp(`${c.mac} ${made[2]!.replaceAll('.', '\\.')} tap-clone`));
    assert.match(leased, new RegExp(`${a.mac} ${inet[1]!.replaceAll('.', '\\.')} `));
    // both run at once, each reached at its own address
    const both = JSON.parse((await ok(['ps', '--json'])).stdout) as { vms: { name: string; ssh: string | null; ready: boolean }[] };
    assert.deepEqual(
      both.vms.map((v) => [v.name, v.ssh, v.ready]),
      [
        ['tapvm', `${inet[1]}:22`, true],
        ['tapclone', `${made[2]}:22`, true],
      ],
    );
    assert.equal((await ok(['exec', 'tapvm', '--', 'hostname'])).stdout.trim(), 'tap-host');

    // down --destroy: no QEMU left, no VM folder left.
    await ok(['down', '--destroy']);
    assert.deepEqual(await killQemuMentioning(p.stateDir), [], 'no QEMU left running after down --destroy');
    const after = JSON.parse((await ok(['ps', '--json'])).stdout) as { vms: { name: string; state: string }[] };
    assert.deepEqual(
      after.vms.map((v) => [v.name, v.state]),
      [
        ['tapvm', 'not-created'],
        ['tapclone', 'not-created'],
      ],
    );
  },
);
