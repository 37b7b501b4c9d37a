/**
 * Warm clones (issue 15 §2, docs/warm.md): a new `warm` VM whose key has a template
 * (src/qemu/templates.ts) gets, at prepare, a new qcow2 overlay backed by the template's frozen
 * disk and `clone.json` saying so; its first start restores the template's memory (-incoming)
 * instead of booting, then makes the guest's identity its own over SSH, on a connection that
 * must present the template's pinned host key:
 *   - hostname (/etc/hostname, the kernel's, /etc/hosts), machine-id (/etc/machine-id and dbus'),
 *   - the kernel's random pool reseeded from the host (the clones' pools were one pool),
 *   - SSH host key: a new ed25519 key generated on the host, installed, sshd restarted; it is
 *     pinned at once (never trusted on first use), the template's keys are removed,
 *   - cloud-init's instance-id moved to the VM's own (its per-instance work is marked done for
 *     it, so cloud-init does not run again at the next boot), and the login key swapped for the
 *     VM's own.
 *   - on the project network, the project NIC's MAC and address; on TAP, the TAP NIC's MAC and a
 *     DHCP lease of its own, its link down on the QEMU side until then (the identity step goes
 *     through the management NIC, src/net/tap-mgmt.ts).
 * Then readiness goes on as after any restore (clock stepped, no cloud-init wait) and the VM's
 * provision steps run. A clone that cannot be restored gets a plain overlay over the base image
 * and boots cold: a guest with the template's identity is never left running.
 */
import { chmod, copyFile, readFile, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { FILE_MODE, readJson, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { TEMPLATE_FILES, templateDir, vmFile } from '../state/paths.js';
import { validateCloneRecord } from '../state/validators.generated.js';
import { createOverlay, qemuImgCreateBacked } from '../images/qemu-img.js';
import { hostAlias, hostKeyLine, writePin } from '../ssh/known-hosts.js';
import { shellQuote } from '../ssh/shell-quote.js';
import { hostnameOf } from '../seed/cloud-config.js';
import { sshUser } from '../ssh/user.js';
import { argvDifference, identify, qemuVersion, type FileId } from './saved-state.js';
import { nicMac, portableArgv, projectNicMac, templateKey, cloneIneligible } from './template-key.js';
import { readTemplate, withTemplateLock, type TemplateRecord } from './templates.js';
import { wantsProjectNet, type ProjectNetMember } from '../net/project-net.js';
import { hostsBlockScript } from '../seed/network-config.js';
import { withoutSharedMemory } from './volumes.js';
import type { QemuContext } from './context.js';
import type { Clock } from '../../schemas/ports.js';
import type { Logger } from '../log.js';

/** What the clone steps shared by both backends need of theirs (QemuContext, LibvirtContext). */
export interface CloneHost {
  stateRoot: string;
  clock: Clock;
  log: Logger | undefined;
}

export interface CloneRecord {
  key: string;
  /** the template's folder */
  template: string;
  /** the clone's overlay right after it was made: a start restores only onto that very disk */
  disk: FileId;
}

export async function readClone(pd: string, vm: string): Promise<CloneRecord | undefined> {
  return readJson<CloneRecord>(vmFile(pd, vm, 'clone'), validateCloneRecord).catch(() => undefined);
}

/**
 * Prepare of a new disk for a `warm` VM: when a template has its key, the disk is made over the
 * template's frozen disk and true is returned; else false (the caller makes a plain overlay).
 */
export async function prepareClone(
  ctx: QemuContext,
  project: Project,
  pd: string,
  vm: VmSpec,
  imageId: string,
  say?: (m: string) => void,
): Promise<boolean> {
  // a remote libvirt host's disks are that host's files: no template there
  if (!vm.warm || ctx.runsElsewhere) return false;
  const projectNic = wantsProjectNet(project);
  if (cloneIneligible(vm, { libvirt: ctx.templateScope !== null, projectNic })) return false;
  const key = templateKey(vm, imageId, projectNic, ctx.templateScope);
  const dir = templateDir(ctx.stateRoot, key);
  const disk = vmFile(pd, vm.name, 'disk');
  // under the template's lock (shared with `image prune`): once it is released, the overlay
  // backed by the template exists, and prune sees the template in use
  const t = await withTemplateLock(ctx.stateRoot, key, async () => {
    const t = await readTemplate(ctx.stateRoot, key).catch(() => undefined);
    if (!t) return null;
    const vars = join(dir, TEMPLATE_FILES.efiVars);
    if (vm.firmware !== 'bios' && !(await exists(vars))) return null; // a damaged template: boot cold
    say?.(`creating disk over warm template ${key}`);
    await qemuImgCreateBacked(join(dir, TEMPLATE_FILES.disk), disk);
    if (vm.firmware !== 'bios') {
      // the guest's UEFI variables as the template's memory knows them, in a file of its own
      await copyFile(vars, vmFile(pd, vm.name, 'efiVars'));
      await chmod(vmFile(pd, vm.name, 'efiVars'), FILE_MODE);
    }
    return t;
  });
  if (!t) return false;
  const id = await identify(disk);
  if (!id) throw new BackendError('QemuImgFailed', `${vm.name}: the clone's disk ${disk} was not created`);
  // the template's guest is in the boot cloud-init was seen done in: no wait for it again
  if (t.bootId) await writeFileAtomic(vmFile(pd, vm.name, 'cloudInitDone'), `${t.bootId}\n`);
  await rm(vmFile(pd, vm.name, 'knownHosts'), { force: true });
  await writeJsonAtomic(vmFile(pd, vm.name, 'clone'), { key, template: dir, disk: id } satisfies CloneRecord);
  return true;
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * Replace a clone's disk by a plain overlay over the base image (it then boots cold). A UEFI
 * clone keeps its copy of the template's variables: they are those of a guest that booted the
 * same base image, as a VM's own are from its second boot on.
 */
async function uncloned(pd: string, vm: VmSpec, t: TemplateRecord | undefined): Promise<void> {
  await rm(vmFile(pd, vm.name, 'clone'), { force: true });
  await rm(vmFile(pd, vm.name, 'cloudInitDone'), { force: true });
  await rm(vmFile(pd, vm.name, 'knownHosts'), { force: true });
  if (!t) throw new BackendError('VmNotPrepared', `${vm.name}: its warm template is gone; recreate it (tend up --recreate)`);
  await rm(vmFile(pd, vm.name, 'disk'), { force: true });
  await createOverlay(t.image, vmFile(pd, vm.name, 'disk'), vm.disk);
}

/**
 * At start: the template to restore when the VM's disk is a clone not started yet and the
 * template fits what is about to run (`fits`: null, or why not; the disk must be the clone's
 * untouched overlay); null when the VM is no pending clone. A clone that does not fit is turned
 * into a plain disk (one line why).
 */
export async function pendingClone(
  ctx: CloneHost,
  pd: string,
  vm: VmSpec,
  fits: (t: TemplateRecord) => Promise<string | null>,
): Promise<TemplateRecord | null> {
  const rec = await readClone(pd, vm.name);
  if (!rec) return null;
  const t = await readTemplate(ctx.stateRoot, rec.key).catch(() => undefined);
  const why = await (async (): Promise<string | null> => {
    if (!t) return 'its template is gone';
    const now = await identify(vmFile(pd, vm.name, 'disk'));
    if (!now || now.ino !== rec.disk.ino || now.size !== rec.disk.size || now.mtimeMs !== rec.disk.mtimeMs)
      return 'its disk was written since it was made';
    return fits(t);
  })();
  if (why === null) return t!;
  ctx.log?.warn({ vm: vm.name }, `warm template not used: ${why}; booting with a fresh disk`);
  await uncloned(pd, vm, t);
  return null;
}

/** pendingClone for the QEMU backend: same QEMU, same argv but for per-clone values. */
export async function cloneToRestore(ctx: QemuContext, pd: string, vm: VmSpec, argv: readonly string[]): Promise<TemplateRecord | null> {
  return pendingClone(ctx, pd, vm, async (t) => {
    if (t.libvirt) return "its template is a libvirt domain's";
    const version = await qemuVersion(ctx.binary, ctx.env);
    if (version !== t.qemuVersion) return `QEMU changed (template made with "${t.qemuVersion}", now "${version}")`;
    // a clone with host folders has its RAM as a shared memfd: the same RAM to the guest
    const diff = argvDifference(portableArgv(t.argv), portableArgv(withoutSharedMemory(argv)));
    if (diff) return `its settings differ from the template's (${diff})`;
    return null;
  });
}

/** After a failed restore or identity change: the guest is gone; the VM boots cold next time. */
export async function abandonClone(ctx: CloneHost, pd: string, vm: VmSpec, why: string): Promise<void> {
  ctx.log?.warn({ vm: vm.name }, `warm clone abandoned: ${why}; the next start boots a fresh disk`);
  const rec = await readClone(pd, vm.name);
  await uncloned(pd, vm, rec ? await readTemplate(ctx.stateRoot, rec.key).catch(() => undefined) : undefined);
}

/** The shell script (run as root) that gives a restored clone its own identity. */
export function identityScript(o: {
  hostname: string;
  machineId: string;
  /** random bytes from the host, hex */
  seedHex: string;
  hostKeyB64: string;
  hostKeyPub: string;
  instanceId: string;
  user: string;
  /** the template's login key (base64 part) to drop, and the VM's own to add; null: same key */
  loginSwap: { drop: string; add: string } | null;
  /** on the project network: the template's project MAC (the restored NIC has it) and the VM's own member */
  net?: { templateMac: string; member: ProjectNetMember } | null;
  /** on TAP: the template's TAP MAC (the restored NIC has it) and the VM's own */
  tap?: { templateMac: string; mac: string } | null;
}): string {
  const q = shellQuote;
  return [
    'set -e',
    `new=${q(o.hostname)}`,
    'old=$(hostname)',
    'echo "$new" > /etc/hostname',
    'hostname "$new"',
    // /etc/hosts: the old name (and old.domain) replaced field by field, comments kept
    `awk -v o="$old" -v n="$new" '/^[[:space:]]*#/ {print; next} {for (i = 2; i <= NF; i++) { if ($i == o) $i = n; else if (index($i, o ".") == 1) $i = n substr($i, length(o) + 1) } print}' /etc/hosts > /etc/hosts.tend`,
    'cat /etc/hosts.tend > /etc/hosts && rm -f /etc/hosts.tend',
    `echo ${q(o.machineId)} > /etc/machine-id`,
    'if [ -e /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then cp /etc/machine-id /var/lib/dbus/machine-id; fi',
    // the random pool: credited entropy from the host, then a reseed (RNDADDENTROPY, RNDRESEEDCRNG)
    `perl -e 'open(my $f, ">", "/dev/random") or die; my $b = pack("H*", $ARGV[0]); ioctl($f, 0x40085203, pack("ii", length($b) * 8, length($b)) . $b) or die; ioctl($f, 0x5207, 0) or die' ${o.seedHex} 2>/dev/null || echo ${o.seedHex} > /dev/urandom`,
    'rm -f /etc/ssh/ssh_host_*',
    `echo ${q(o.hostKeyB64)} | base64 -d > /etc/ssh/ssh_host_ed25519_key`,
    'chmod 600 /etc/ssh/ssh_host_ed25519_key',
    `echo ${q(o.hostKeyPub)} > /etc/ssh/ssh_host_ed25519_key.pub`,
    // sshd re-executes itself on SIGHUP and loads the new key; sessions (this one) go on
    'if [ -s /run/sshd.pid ] && kill -HUP "$(cat /run/sshd.pid)" 2>/dev/null; then :; else (systemctl restart ssh.service || systemctl restart sshd.service || service ssh restart) >/dev/null 2>&1; fi',
    `iid=${q(o.instanceId)}`,
    'if [ -f /var/lib/cloud/data/instance-id ]; then',
    '  was=$(cat /var/lib/cloud/data/instance-id)',
    '  if [ "$was" != "$iid" ] && [ -d "/var/lib/cloud/instances/$was" ]; then mv "/var/lib/cloud/instances/$was" "/var/lib/cloud/instances/$iid"; fi',
    '  ln -sfn "/var/lib/cloud/instances/$iid" /var/lib/cloud/instance',
    '  echo "$iid" > /var/lib/cloud/data/instance-id',
    '  echo "$iid" > /var/lib/cloud/data/previous-instance-id',
    'fi',
    ...(o.net ? projectNicScript(o.net.templateMac, o.net.member) : []),
    ...(o.tap ? tapNicScript(o.tap.templateMac, o.tap.mac) : []),
    ...(o.loginSwap
      ? [
          `ak="$(getent passwd ${q(o.user)} | cut -d: -f6)/.ssh/authorized_keys"`,
          'if [ -f "$ak" ]; then',
          `  echo ${q(o.loginSwap.add)} >> "$ak"`,
          `  grep -vF ${q(o.loginSwap.drop)} "$ak" > "$ak.tend" || true`,
          '  cat "$ak.tend" > "$ak"; rm -f "$ak.tend"',
          'fi',
        ]
      : []),
    // on disk before tend calls the VM started (only these files: a whole `sync` writes back the page cache)
    'sync /etc/hostname /etc/hosts /etc/machine-id /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh /var/lib/cloud/data /var/lib/cloud 2>/dev/null || sync',
  ].join('\n');
}

/**
 * Where a guest keeps the network configuration cloud-init rendered at the template's first
 * boot (ifupdown on Debian, netplan, networkd, sysconfig, NetworkManager) and the udev rule that
 * names the NICs by MAC: the template's project MAC and address are in them, and cloud-init
 * renders them only for a new instance, which a clone is not. On Debian 12 they are
 * /etc/network/interfaces.d/50-cloud-init (the template's address) and 70-persistent-net.rules
 * (the template's MAC), which ifupdown and udev apply at every boot: a clone cold-booted without
 * this edit had the template's address next to its own (docs/decisions.md).
 */
const GUEST_NET_FILES = [
  '/etc/network/interfaces',
  '/etc/network/interfaces.d/*',
  '/etc/netplan/*.yaml',
  '/etc/systemd/network/*.network',
  '/etc/systemd/network/*.link',
  '/etc/sysconfig/network-scripts/ifcfg-*',
  '/etc/NetworkManager/system-connections/*',
  '/etc/udev/rules.d/70-persistent-net.rules',
];

/**
 * The project NIC made the clone's own: the NIC that has the template's MAC gets the VM's MAC
 * (virtio-net passes it to QEMU over its control queue), loses the template's address and gets
 * its own, in the running guest and in the guest's network configuration files (for the next
 * boot), and the project block of /etc/hosts (and of cloud-init's hosts templates) is the VM's
 * member's. The link goes down and up around the MAC change so that its IPv6 link-local
 * address follows the new MAC (two clones would otherwise share the template's on the segment).
 * Every later boot's bootcmd comes from the VM's own seed: cloud-init reads a NoCloud ISO again
 * at each boot (its cached copy is trusted only for seeds on the kernel command line or in
 * /var/lib/cloud/seed).
 */
function projectNicScript(templateMac: string, net: ProjectNetMember): string[] {
  const q = shellQuote;
  return [
    `tmac=${q(templateMac)}; pmac=${q(net.mac)}; paddr=${q(`${net.address}/${net.prefix}`)}; pdev=`,
    'for i in /sys/class/net/*; do a=$(cat "$i/address" 2>/dev/null || true); if [ "$a" = "$tmac" ] || [ "$a" = "$pmac" ]; then pdev=$(basename "$i"); fi; done',
    'if [ -z "$pdev" ]; then echo "no NIC with the project MAC $tmac" >&2; exit 1; fi',
    // the template's address (CIDR) as the guest has it, to find it in the configuration files
    'taddr=$(ip -4 -o addr show dev "$pdev" | awk \'{print $4; exit}\')',
    'ip link set dev "$pdev" down',
    'ip link set dev "$pdev" address "$pmac"',
    'ip -4 addr flush dev "$pdev"',
    'ip link set dev "$pdev" up',
    'ip addr add "$paddr" dev "$pdev"',
    `for f in ${GUEST_NET_FILES.join(' ')}; do`,
    '  [ -f "$f" ] || continue',
    '  grep -qiF -e "$tmac" ${taddr:+-e "$taddr"} "$f" || continue',
    '  sed -i -e "s/$tmac/$pmac/gI" "$f"',
    // the address as a whole word: 10.213.0.1/24 is not a part of 10.213.0.11/24
    '  if [ -n "$taddr" ] && [ "$taddr" != "$paddr" ]; then re=$(printf \'%s\' "$taddr" | sed \'s/[.]/\\\\./g\'); sed -i -e "s#\\(^\\|[^0-9.]\\)$re\\([^0-9]\\|\\$\\)#\\1$paddr\\2#g" "$f"; fi',
    '  sync "$f"',
    'done',
    ...hostsBlockScript(net),
  ];
}

/** Where the identity step leaves the command line of the DHCP client it stopped (tapRenewScript runs it again). */
const DHCP_CMD_FILE = '/run/tend-clone-dhcp.cmd';

/**
 * The TAP NIC made the clone's own, while its link is down on the QEMU side (nothing it sends
 * reaches the bridge): the template's DHCP client is stopped without a release (the template's
 * own VM may hold that lease still) after its command line was kept, its lease and DUID files
 * are removed (dhclient's client identifier is made from the DUID: kept, the clone would get the
 * template's address), the NIC gets the VM's MAC and loses the template's address, and the MAC
 * is replaced in the network configuration files (cloud-init's rendering and the udev rule).
 * The renew follows once the link is up (tapRenewScript).
 */
export function tapNicScript(templateMac: string, mac: string): string[] {
  const q = shellQuote;
  return [
    `tmac=${q(templateMac)}; cmac=${q(mac)}; tdev=`,
    'for i in /sys/class/net/*; do a=$(cat "$i/address" 2>/dev/null || true); if [ "$a" = "$tmac" ] || [ "$a" = "$cmac" ]; then tdev=$(basename "$i"); fi; done',
    'if [ -z "$tdev" ]; then echo "no NIC with the TAP MAC $tmac" >&2; exit 1; fi',
    `rm -f ${DHCP_CMD_FILE}`,
    'for p in $(pgrep -x dhclient || true); do',
    '  if tr "\\0" "\\n" < "/proc/$p/cmdline" 2>/dev/null | grep -qx "$tdev"; then',
    `    tr "\\0" " " < "/proc/$p/cmdline" > ${DHCP_CMD_FILE}; kill "$p" 2>/dev/null || true`,
    '  fi',
    'done',
    'rm -f /var/lib/dhcp/dhclient*.leases /var/lib/dhcp/dhclient*.lease',
    'ip link set dev "$tdev" down',
    'ip link set dev "$tdev" address "$cmac"',
    'ip -4 addr flush dev "$tdev"',
    'ip link set dev "$tdev" up',
    `for f in ${GUEST_NET_FILES.join(' ')}; do`,
    '  [ -f "$f" ] || continue',
    '  grep -qiF -e "$tmac" "$f" || continue',
    '  sed -i -e "s/$tmac/$cmac/gI" "$f"',
    '  sync "$f"',
    'done',
  ];
}

/**
 * After the TAP NIC's link is up: a DHCP lease for the VM's MAC, by the DHCP client command the
 * identity step stopped (ifupdown's dhclient on Debian), else by systemd-networkd, else by a plain
 * dhclient. Waits for the lease.
 */
export function tapRenewScript(mac: string): string {
  const q = shellQuote;
  return [
    'set -e',
    `cmac=${q(mac)}; tdev=`,
    'for i in /sys/class/net/*; do if [ "$(cat "$i/address" 2>/dev/null)" = "$cmac" ]; then tdev=$(basename "$i"); fi; done',
    'if [ -z "$tdev" ]; then echo "no NIC with the MAC $cmac" >&2; exit 1; fi',
    `if [ -s ${DHCP_CMD_FILE} ]; then cmd=$(cat ${DHCP_CMD_FILE}); rm -f ${DHCP_CMD_FILE}; $cmd >/dev/null 2>&1 </dev/null`,
    'elif command -v networkctl >/dev/null && systemctl -q is-active systemd-networkd; then networkctl reconfigure "$tdev"',
    'else dhclient -4 "$tdev" >/dev/null 2>&1 </dev/null; fi',
    // the lease's address, up to 60 s
    'n=0; until ip -4 -o addr show dev "$tdev" | grep -q inet; do n=$((n + 1)); if [ $n -gt 300 ]; then echo "no DHCP address on $tdev after 60 s" >&2; exit 1; fi; sleep 0.2; done',
    'ip -4 -o addr show dev "$tdev" | awk \'{print $4; exit}\'',
  ].join('\n');
}

/**
 * Make a restored clone's identity its own (see the top of this file), over SSH on `sshPort`,
 * logged in with the template's login key and accepting only the template's host keys. The new
 * host key is pinned for the VM.
 */
export async function makeIdentityOwn(
  ctx: CloneHost,
  project: Project,
  pd: string,
  vm: VmSpec,
  t: TemplateRecord,
  sshPort: number,
  projectNet: ProjectNetMember | null,
  signal?: AbortSignal,
  /** on TAP: the VM's own MAC, and how to bring the NIC's link up (it was set down before the guest ran) */
  tap: { mac: string; linkUp: () => Promise<void> } | null = null,
): Promise<void> {
  const { sshConnect, execOnClient } = await import('../ssh/exec.js');
  const { generateKeypair } = await import('../ssh/keys.js');
  const tdir = templateDir(ctx.stateRoot, t.key);
  const loginKey = t.loginKey ? join(tdir, TEMPLATE_FILES.privateKey) : vm.ssh.privateKey;
  if (!loginKey) throw new BackendError('CloneFailed', `${vm.name}: the template has no login key`);
  const target = { host: '127.0.0.1', port: sshPort, user: t.user, privateKey: loginKey };
  const t0 = ctx.clock.now();
  const deadline = t0 + 120_000;
  let client;
  for (;;) {
    try {
      client = await sshConnect(target, {
        ...(signal ? { signal } : {}),
        readyTimeoutMs: 20_000,
        hostVerifier: (blob) => t.hostKeys.includes(hostKeyLine(blob)),
      });
      break;
    } catch (err) {
      if (signal?.aborted || ctx.clock.now() > deadline) throw err;
      await ctx.clock.sleep(300, signal);
    }
  }
  const tConnected = ctx.clock.now();
  let tapAddress = '';
  let dhcpMs = 0;
  try {
    const hostKey = generateKeypair(`root@${hostnameOf(vm)}`);
    const hostPub = hostKey.public.trim().split(/\s+/).slice(0, 2).join(' ');
    let loginSwap: { drop: string; add: string } | null = null;
    if (t.loginKey) {
      const drop = (await readFile(join(tdir, `${TEMPLATE_FILES.privateKey}.pub`), 'utf8')).trim().split(/\s+/)[1] ?? '';
      const add = (await readFile(vmFile(pd, vm.name, 'publicKey'), 'utf8')).trim();
      if (drop && !add.includes(drop)) loginSwap = { drop, add };
    }
    const instanceId = (await readFile(vmFile(pd, vm.name, 'instanceId'), 'utf8')).trim();
    const templateMac = projectNicMac(t.argv);
    // portableArgv compared the two argvs: both have a project NIC or neither has
    if ((templateMac === null) !== (projectNet === null))
      throw new BackendError('CloneFailed', `${vm.name}: the template and the clone differ in having a project NIC`);
    const templateTapMac = tap ? nicMac(t.argv, 'n0') : null;
    if (tap && !templateTapMac) throw new BackendError('CloneFailed', `${vm.name}: the template's TAP NIC has no MAC in its argv`);
    const script = identityScript({
      hostname: hostnameOf(vm),
      machineId: randomBytes(16).toString('hex'),
      seedHex: randomBytes(64).toString('hex'),
      hostKeyB64: Buffer.from(hostKey.private).toString('base64'),
      hostKeyPub: hostKey.public.trim(),
      instanceId,
      user: sshUser(vm),
      loginSwap,
      net: templateMac && projectNet ? { templateMac, member: projectNet } : null,
      tap: tap && templateTapMac ? { templateMac: templateTapMac, mac: tap.mac } : null,
    });
    const r = await execOnClient(client, target, `sudo -n sh -c ${shellQuote(script)}`, signal ? { signal } : {});
    if (r.code !== 0)
      throw new BackendError(
        'CloneFailed',
        `${vm.name}: could not make the clone's identity its own (exit ${r.code}: ${String(r.stderr).trim().slice(0, 300)})`,
      );
    if (tap) {
      // the NIC has the VM's MAC now: on the bridge, and a lease of its own
      const tLink = ctx.clock.now();
      await tap.linkUp();
      const renew = await execOnClient(client, target, `sudo -n sh -c ${shellQuote(tapRenewScript(tap.mac))}`, signal ? { signal } : {});
      if (renew.code !== 0)
        throw new BackendError(
          'CloneFailed',
          `${vm.name}: the clone's TAP NIC got no DHCP lease (exit ${renew.code}: ${String(renew.stderr).trim().slice(0, 300)})`,
        );
      tapAddress = String(renew.stdout).trim();
      dhcpMs = ctx.clock.now() - tLink;
    }
    await writePin(vmFile(pd, vm.name, 'knownHosts'), { instanceId, alias: hostAlias(project.name, vm.name), keys: [hostPub] });
  } finally {
    client.on('error', () => {});
    client.end();
  }
  await rm(vmFile(pd, vm.name, 'clone'), { force: true });
  ctx.log?.info(
    { vm: vm.name },
    `warm clone of template ${t.key}: hostname, machine-id, SSH host key${projectNet ? `, project MAC and address (${projectNet.address})` : ''}${tap ? `, TAP MAC ${tap.mac} and DHCP address (${tapAddress})` : ''} and instance-id made its own (SSH ${((tConnected - t0) / 1000).toFixed(1)} s, changes ${((ctx.clock.now() - tConnected) / 1000).toFixed(1)} s${tap ? ` of which link up and DHCP ${(dhcpMs / 1000).toFixed(1)} s` : ''})`,
  );
}
