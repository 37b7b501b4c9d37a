/**
 * Observation of one VM from its folder and its process: never a saved belief about the
 * process. The pid counts only when it is this VM's QEMU (liveness.ts); QMP then says whether
 * it runs, is paused, or hangs. State files are read defensively: a corrupt one is listed in
 * `corrupt` and treated as missing.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import type { ObservedVm } from '../../schemas/ports.js';
import type { VmSpec } from '../../schemas/model.js';
import { exists, readJson, type CorruptFile } from '../state/atomic.js';
import { socketPath, vmFile, vmsDir } from '../state/paths.js';
import { accelOf } from './argv.js';
import { liveQemu } from './liveness.js';
import type { PortRecord } from './ports.js';
import { qmpOnce, type QmpStatus } from './qmp.js';
import { recordedSteps } from '../provision/record.js';

/** applied.json: the spec a VM was last prepared/started with, and the image its disk came from. */
export interface AppliedRecord {
  spec: VmSpec;
  diskImage: string | null;
}

export interface IntentRecord {
  intent: 'stopped' | null;
}

/** Names of the VM folders of a project. */
export async function vmFolders(projDir: string): Promise<string[]> {
  try {
    const entries = await readdir(vmsDir(projDir), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function isAppliedRecord(v: unknown): v is AppliedRecord {
  return (
    typeof v === 'object' &&
    v !== null &&
    'spec' in v &&
    typeof (v as AppliedRecord).spec === 'object' &&
    (v as AppliedRecord).spec !== null
  );
}

function powerOf(st: QmpStatus): ObservedVm['power'] {
  if (st.running) return 'running';
  if (['paused', 'suspended', 'prelaunch', 'inmigrate', 'postmigrate', 'finish-migrate', 'save-vm', 'restore-vm'].includes(st.status))
    return 'paused';
  return 'unknown';
}

export async function observeVm(projDir: string, name: string, env: NodeJS.ProcessEnv, qmpTimeoutMs = 1000): Promise<ObservedVm> {
  const corrupt: string[] = [];
  const onCorrupt = (c: CorruptFile): void => {
    corrupt.push(c.path);
  };
  const f = (k: Parameters<typeof vmFile>[2]): string => vmFile(projDir, name, k);
  const [diskExists, live, appliedRaw, portsRaw, intentRaw, instanceId] = await Promise.all([
    exists(f('disk')),
    liveQemu(f('pid')),
    readJson<unknown>(f('applied'), onCorrupt),
    readJson<unknown>(f('ports'), onCorrupt),
    readJson<unknown>(f('intent'), onCorrupt),
    readFile(f('instanceId'), 'utf8').then(
      (t) => t.trim(),
      () => null,
    ),
  ]);

  let applied: AppliedRecord | null = null;
  if (appliedRaw !== undefined) {
    if (isAppliedRecord(appliedRaw)) applied = appliedRaw;
    else corrupt.push(f('applied'));
  }
  let ports: PortRecord = {};
  if (portsRaw !== undefined) {
    if (typeof portsRaw === 'object' && portsRaw !== null && !Array.isArray(portsRaw)) ports = portsRaw as PortRecord;
    else corrupt.push(f('ports'));
  }
  let intent: 'stopped' | null = null;
  if (intentRaw !== undefined) {
    const i = (intentRaw as IntentRecord | null)?.intent;
    if (i === 'stopped') intent = 'stopped';
    else if (i !== null) corrupt.push(f('intent'));
  }
  const provisioned = await recordedSteps(projDir, name, instanceId, onCorrupt);

  let power: ObservedVm['power'] = 'stopped';
  let startedAt: number | null = null;
  if (live) {
    try {
      power = powerOf(await qmpOnce<QmpStatus>(socketPath(projDir, name, 'qmp', env), 'query-status', undefined, qmpTimeoutMs));
    } catch {
      power = 'unknown';
    }
    try {
      // QEMU writes its pidfile as it starts
      startedAt = (await stat(f('pid'))).mtimeMs;
    } catch {
      startedAt = null;
    }
  }
  const sshAddr = live ? ports.ssh : undefined;
  const sshPort = sshAddr ? Number(sshAddr.slice(sshAddr.lastIndexOf(':') + 1)) : null;
  return {
    name,
    exists: diskExists,
    power,
    pid: live ? live.pid : null,
    applied: applied ? applied.spec : null,
    diskImage: applied ? applied.diskImage : null,
    accel: live ? accelOf(live.argv) : null,
    ports: live ? ports : {},
    sshPort: sshPort !== null && Number.isInteger(sshPort) ? sshPort : null,
    intent,
    provisioned,
    startedAt,
    corrupt: [...new Set(corrupt)],
  };
}
