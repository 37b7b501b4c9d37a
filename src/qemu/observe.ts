/**
 * Observation of one VM from its folder and its process: never a saved belief about the
 * process. The pid counts only when it is this VM's QEMU (liveness.ts); QMP then says whether
 * it runs, is paused, or hangs. State files are read defensively: a corrupt one is listed in
 * `corrupt` and treated as missing.
 */
import { readdir, stat } from 'node:fs/promises';
import type { Observed, ObservedVm } from '../../schemas/ports.js';
import type { VmSpec } from '../../schemas/model.js';
import { exists, readJson, type CorruptFile, type StateValidator } from '../state/atomic.js';
import { socketPath, vmFile, vmsDir } from '../state/paths.js';
import { validateAppliedRecord, validateIntentRecord, validatePortRecord } from '../state/validators.generated.js';
import { readStatus } from '../state/status.js';
import { accelOf } from './argv.js';
import { readInstanceId } from '../state/instance-id.js';
import { findQemu, sharedQemuScan, type QemuScan } from './liveness.js';
import { forwardsOf, type PortRecord } from './ports.js';
import { readyRecorded } from './readiness.js';
import { readSaved } from './saved-state.js';
import { diskSnapshots } from './disk-snapshots.js';
import { qmpOnce, type QmpStatus } from './qmp.js';
import { recordedSteps } from '../provision/record.js';

/** applied.json: the spec a VM was last prepared/started with, and the image its disk came from. */
export interface AppliedRecord {
  spec: VmSpec;
  diskImage: string | null;
}

/** applied.json's schema: the spec must be a whole canonical VmSpec (schemas/model.ts). */
export const appliedRecordSchema = {
  $id: 'tend:state/applied',
  type: 'object',
  required: ['spec'],
  properties: { spec: { $ref: 'tend:vm-spec' }, diskImage: { type: ['string', 'null'] } },
} as const;

/**
 * A spec recorded by an older tend lacks the fields added since: fill in what that tend ran
 * the VM with, so the plan compares like with like (`video: none → vga`, not a phantom change)
 * and the record is not taken for a damaged one.
 */
export function upgradeAppliedSpec<T extends Partial<VmSpec>>(spec: T): T & Pick<VmSpec, 'video' | 'graphics'> {
  // before the video setting, every VM ran with `-vga none` and no VNC/SPICE
  return { ...spec, video: spec.video ?? 'none', graphics: spec.graphics ?? 'none' };
}

/** validateAppliedRecord, after upgradeAppliedSpec filled in what an older tend did not record. */
export const validateApplied: StateValidator = Object.assign(
  (data: unknown): boolean => {
    if (typeof data === 'object' && data !== null) {
      const rec = data as { spec?: unknown };
      if (typeof rec.spec === 'object' && rec.spec !== null) rec.spec = upgradeAppliedSpec(rec.spec as Partial<VmSpec>);
    }
    const ok = validateAppliedRecord(data);
    validateApplied.errors = validateAppliedRecord.errors ?? null;
    return ok;
  },
  { errors: null as StateValidator['errors'] },
);

export interface IntentRecord {
  intent: 'stopped' | null;
}

export const intentRecordSchema = {
  $id: 'tend:state/intent',
  type: 'object',
  required: ['intent'],
  properties: { intent: { enum: ['stopped', null] } },
} as const;

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

function powerOf(st: QmpStatus): ObservedVm['power'] {
  if (st.running) return 'running';
  if (['paused', 'suspended', 'prelaunch', 'inmigrate', 'postmigrate', 'finish-migrate', 'save-vm', 'restore-vm'].includes(st.status))
    return 'paused';
  return 'unknown';
}

export async function observeVm(
  projDir: string,
  name: string,
  env: NodeJS.ProcessEnv,
  qmpTimeoutMs = 1000,
  scan?: QemuScan,
): Promise<ObservedVm> {
  const corrupt: string[] = [];
  const onCorrupt = (c: CorruptFile): void => {
    corrupt.push(c.path);
  };
  const f = (k: Parameters<typeof vmFile>[2]): string => vmFile(projDir, name, k);
  const [diskExists, live, appliedRec, portsRec, intentRec, instanceId, clonePending] = await Promise.all([
    exists(f('disk')),
    findQemu(f('pid'), scan),
    readJson<AppliedRecord>(f('applied'), validateApplied, onCorrupt),
    readJson<PortRecord>(f('ports'), validatePortRecord, onCorrupt),
    readJson<IntentRecord>(f('intent'), validateIntentRecord, onCorrupt),
    readInstanceId(projDir, name, onCorrupt),
    // a warm clone's identity step deletes clone.json at its very end (clone.ts)
    exists(f('clone')),
    // the CLI's last verdict (status.json) is not observation, but a damaged one is reported here too
    readStatus(projDir, name, onCorrupt),
  ]);

  const applied: AppliedRecord | null = appliedRec ?? null;
  // a lost or damaged port record of a running VM is rebuilt from its QEMU's own argv
  const ports: PortRecord = portsRec ?? (live ? forwardsOf(live.argv) : {});
  const intent: 'stopped' | null = intentRec?.intent ?? null;
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
  const ready = live ? await readyRecorded(projDir, name, live.pid) : false;
  const savedRec = live ? undefined : await readSaved(projDir, name, onCorrupt);
  // a TAP VM is reached at its bridge address; a warm one's forward is its management NIC's, tend's own (src/net/tap-mgmt.ts)
  const sshAddr = live && applied?.spec.network.mode !== 'tap' ? ports.ssh : undefined;
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
    ready,
    saved: savedRec ? { bytes: savedRec.bytes, savedAt: savedRec.savedAt } : null,
    clonePending,
    snapshots: diskExists ? (await diskSnapshots(f('disk')).catch(() => [])).map((x) => x.name) : [],
    corrupt: [...new Set(corrupt)],
  };
}

/** Every VM of a project folder, observed (observeVm); one /proc scan at most (`scan`: shared wider, e.g. by `tend ls`). */
export async function observeProject(pd: string, env: NodeJS.ProcessEnv, scan: QemuScan = sharedQemuScan()): Promise<Observed> {
  const names = await vmFolders(pd);
  const list = await Promise.all(names.map((n) => observeVm(pd, n, env, 1000, scan)));
  const vms: Record<string, ObservedVm> = {};
  for (const o of list) {
    // a folder with nothing in it worth reporting (no disk, no process, no intent) is not a VM
    if (!o.exists && o.pid === null && o.intent === null && o.applied === null) continue;
    vms[o.name] = o;
  }
  return { vms };
}
