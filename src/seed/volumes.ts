/**
 * Named volumes and host folders inside the guest, through cloud-init `bootcmd` (which runs on
 * every boot, unlike runcmd): one small idempotent shell snippet per mount.
 *
 * Named volume (a virtio disk with serial=<volume name>, see src/qemu/argv.ts):
 *   - wait for /dev/disk/by-id/virtio-<serial>;
 *   - `blkid -p` exit code 2 means "no filesystem at all": only then `mkfs.ext4 -L <name>`
 *     (a volume that has any filesystem is never formatted again; any other blkid failure
 *     leaves the disk alone);
 *   - mount it at the target unless something is mounted there already; `:ro` mounts with
 *     `-o ro` (the disk itself is also attached readonly=on by QEMU).
 *
 * Host folder (virtiofs, tag from `hostFolderTag`): `mount -t virtiofs <tag> <target>`, `-o ro`
 * for `:ro`. Pure functions: no fs, no process.
 */
import type { VmSpec, VolumeMount } from '../../schemas/model.js';

/** virtio-blk serials are at most 20 bytes (VIRTIO_BLK_ID_BYTES): QEMU keeps the first 20. */
export const VIRTIO_SERIAL_MAX = 20;
/** ext4 labels are at most 16 bytes. */
export const EXT4_LABEL_MAX = 16;

/** The serial a named volume's disk carries (what the guest sees under /dev/disk/by-id/virtio-*). */
export function volumeSerial(name: string): string {
  return name.slice(0, VIRTIO_SERIAL_MAX);
}

export function volumeDevice(name: string): string {
  return `/dev/disk/by-id/virtio-${volumeSerial(name)}`;
}

/** The virtiofs tag of the i-th host folder of a VM (stable for a given spec order). */
export function hostFolderTag(index: number): string {
  return `tend-host-${index}`;
}

/** Single-quote a string for sh. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The bootcmd snippet for one named volume. */
export function namedVolumeScript(m: { name: string; target: string; readOnly: boolean }): string {
  const dev = shq(volumeDevice(m.name));
  const target = shq(m.target);
  const label = shq(m.name.slice(0, EXT4_LABEL_MAX));
  const tag = `tend-volume[${m.name}]`;
  const lines = [
    `dev=${dev}; t=${target}; i=0`,
    'udevadm settle -t 10 2>/dev/null || true',
    'while [ ! -e "$dev" ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done',
    `if [ ! -e "$dev" ]; then echo "${tag}: $dev not found" >&2; exit 0; fi`,
    'blkid -p "$dev" >/dev/null 2>&1; rc=$?',
  ];
  if (m.readOnly) {
    lines.push(`if [ $rc -eq 2 ]; then echo "${tag}: read-only volume has no filesystem yet (attach it read-write once)" >&2; exit 0; fi`);
  } else {
    lines.push(`if [ $rc -eq 2 ]; then mkfs.ext4 -q -L ${label} "$dev" || { echo "${tag}: mkfs failed" >&2; exit 0; }; fi`);
  }
  lines.push('mkdir -p "$t"');
  lines.push(
    m.readOnly
      ? 'mountpoint -q "$t" || mount -o ro "$dev" "$t" || mount -o ro,noload "$dev" "$t" || echo "' + tag + ': mount failed" >&2'
      : 'mountpoint -q "$t" || mount "$dev" "$t" || echo "' + tag + ': mount failed" >&2',
  );
  // a subshell so `exit` ends only this volume's snippet, never the whole bootcmd script
  return `(\n${lines.map((l) => `  ${l}`).join('\n')}\n)`;
}

/** The bootcmd snippet for one host folder shared with virtiofs. */
export function hostFolderScript(m: { target: string; readOnly: boolean }, tag: string): string {
  const t = shq(m.target);
  const opts = m.readOnly ? '-o ro ' : '';
  return [
    '(',
    `  t=${t}`,
    '  modprobe virtiofs 2>/dev/null || true',
    '  mkdir -p "$t"',
    `  mountpoint -q "$t" || mount -t virtiofs ${opts}${shq(tag)} "$t" || echo "tend-folder[${tag}]: mount failed" >&2`,
    ')',
  ].join('\n');
}

/** Host folders of a VM with their virtiofs tags, in spec order. */
export function hostFolders(vm: VmSpec): { mount: Extract<VolumeMount, { kind: 'host' }>; tag: string }[] {
  const out: { mount: Extract<VolumeMount, { kind: 'host' }>; tag: string }[] = [];
  for (const m of vm.volumes) if (m.kind === 'host') out.push({ mount: m, tag: hostFolderTag(out.length) });
  return out;
}

/** Every bootcmd entry the VM's mounts need, in spec order (empty when it has none). */
export function volumeBootcmd(vm: VmSpec): string[] {
  const folders = new Map(hostFolders(vm).map((h) => [h.mount, h.tag]));
  return vm.volumes.map((m) => (m.kind === 'named' ? namedVolumeScript(m) : hostFolderScript(m, folders.get(m) as string)));
}
