/**
 * The internal snapshots of a qcow2 disk, as `qemu-img info -U` lists them (it reads the file while
 * QEMU runs). The header's snapshot count is read first, so a disk without any (the usual case:
 * observe asks on every pass) costs no process.
 */
import { open } from 'node:fs/promises';
import { execa } from 'execa';
import type { SnapshotInfo } from '../../schemas/ports.js';
import { BackendError } from '../../schemas/errors.js';

interface QemuImgSnapshot {
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
}

/** Number of internal snapshots in a qcow2 file's header (bytes 60..63), without a process. */
async function headerSnapshotCount(path: string): Promise<number> {
  const fh = await open(path, 'r').catch(() => null);
  if (!fh) return 0;
  try {
    const b = Buffer.alloc(72);
    const { bytesRead } = await fh.read(b, 0, 72, 0);
    if (bytesRead < 72 || b.readUInt32BE(0) !== 0x514649fb) return 0; // "QFI\xfb"
    return b.readUInt32BE(60);
  } finally {
    await fh.close();
  }
}

/** The snapshots of a disk (qemu-img info -U reads it while QEMU runs), oldest first. */
export async function diskSnapshots(disk: string): Promise<SnapshotInfo[]> {
  if ((await headerSnapshotCount(disk)) === 0) return [];
  const r = await execa('qemu-img', ['info', '-U', '--output=json', disk], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new BackendError('SnapshotListFailed', `cannot read the snapshots of ${disk}: ${String(r.stderr).trim()}`);
  const info = JSON.parse(String(r.stdout)) as { snapshots?: QemuImgSnapshot[] };
  return (info.snapshots ?? []).map((s) => ({
    name: s.name,
    createdAt: s['date-sec'] * 1000 + Math.floor(s['date-nsec'] / 1e6),
    vmState: s['vm-state-size'] > 0,
    vmStateBytes: s['vm-state-size'],
  }));
}
