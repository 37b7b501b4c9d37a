/**
 * The plan: a pure diff of desired (the loaded project) against observed (what the backend
 * saw). No disk, no process, no clock. `tend plan` prints it; `converge` executes it.
 *
 * What a change does (design §3):
 *   provision steps, healthcheck, restart policy, depends_on, grace period,
 *   readiness timeouts                                                     → applied live
 *   cpus, memory, machine, cpu model, firmware, accel, network, ports, devices, volumes,
 *   extra args, video, graphics, disk growth                               → restart, disk kept
 *   cloud-init content, SSH user/key                                       → new seed (reseed)
 *   image, disk shrink                                                     → recreate, only when
 *     `disposable` or --recreate; otherwise RecreateRequired and the VM is left as it is
 *   VM no longer declared → orphan (reported); destroyed only with --prune
 */
import type { VmSpec, Project } from '../schemas/model.js';
import type { Observed, ObservedVm } from '../schemas/ports.js';

export type PlanAction =
  'create' | 'start' | 'restart' | 'recreate' | 'recreate-required' | 'reseed' | 'stop' | 'orphan' | 'prune' | 'none';

export interface PlanEntry {
  vm: string;
  action: PlanAction;
  /** what differs, "field: old → new" */
  changed: string[];
  /** anything else the user should know (live changes, intents, cloud-init rules) */
  notes: string[];
  /** why the action is taken when no changed field says it (said again when it is carried out) */
  reason?: string;
}

export interface PlanOptions {
  recreate: boolean;
  prune: boolean;
  /** limit to these VMs (desired names); orphans are then only pruned when named */
  names?: string[];
}

type FieldClass = 'recreate' | 'restart' | 'seed' | 'live';

/** How each VmSpec field is applied. Every field of VmSpec appears here (checked by the type). */
const FIELD_CLASS: Record<keyof VmSpec, FieldClass> = {
  name: 'live',
  service: 'live',
  image: 'recreate',
  imageDigest: 'recreate', // the local image file was replaced
  userDataDigest: 'seed', // the raw user-data file's content changed
  disk: 'restart', // growth; a shrink is promoted to recreate below
  cpus: 'restart',
  memory: 'restart',
  machine: 'restart',
  cpuModel: 'restart',
  firmware: 'restart',
  accel: 'restart',
  network: 'restart',
  ports: 'restart',
  devices: 'restart',
  volumes: 'restart',
  extraArgs: 'restart',
  video: 'restart',
  graphics: 'restart',
  cloudInit: 'seed',
  ssh: 'seed',
  provision: 'live',
  healthcheck: 'live',
  restart: 'live',
  dependsOn: 'live',
  runState: 'live',
  disposable: 'live',
  stopGracePeriod: 'live',
  stopMode: 'live', // read by the next stop
  warm: 'live', // read when the VM is next created (clone) or observed Ready (template)
  timeouts: 'live', // read when the VM next waits for readiness
  backend: 'restart', // stopped on the old backend, started on the new one; the disk is kept
  connect: 'restart',
  libvirt: 'restart', // domain XML snippets
};

/**
 * A VM observed running while its disk is still a warm clone whose identity step did not finish
 * (ObservedVm.clonePending): the tend that started it was stopped during that step, and the guest
 * has its template's hostname, machine-id, host key and instance-id. It is never adopted (its
 * readiness would pin the template's host key): it is restarted, and the start either restores the
 * template again and runs the identity step, or boots a fresh disk when the guest wrote its disk.
 */
export const UNFINISHED_CLONE = "its warm clone's identity step did not finish (tend was stopped during it)";

const SEED_NOTE =
  'new cloud-init seed: cloud-init applies it by its own rules (per-boot modules at the next boot; per-instance ones only on a new disk)';

export function plan(project: Project, observed: Observed, opts: PlanOptions): PlanEntry[] {
  const wanted = opts.names ? new Set(opts.names) : undefined;
  const entries: PlanEntry[] = [];
  const desiredNames = new Set(project.vms.map((v) => v.name));
  for (const vm of project.vms) {
    if (wanted && !wanted.has(vm.name)) continue;
    entries.push(planVm(vm, observed.vms[vm.name], opts));
  }
  for (const [name, obs] of Object.entries(observed.vms)) {
    if (desiredNames.has(name)) continue;
    if (wanted && !wanted.has(name)) continue;
    const running = obs.power !== 'stopped';
    entries.push(
      opts.prune
        ? {
            vm: name,
            action: 'prune',
            changed: [],
            notes: [`no longer declared: ${running ? 'stopped and ' : ''}deleted (named volumes kept)`],
          }
        : {
            vm: name,
            action: 'orphan',
            changed: [],
            notes: [`no longer declared (${running ? 'still running' : 'stopped'}): pass --prune to delete it`],
          },
    );
  }
  return entries;
}

export function planVm(vm: VmSpec, obs: ObservedVm | undefined, opts: Pick<PlanOptions, 'recreate'>): PlanEntry {
  const entry = (action: PlanAction, changed: string[] = [], notes: string[] = []): PlanEntry => ({ vm: vm.name, action, changed, notes });
  const wantStopped = vm.runState === 'stopped' || obs?.intent === 'stopped';
  const stopWhy =
    obs?.intent === 'stopped' ? 'stopped by `tend stop` or `tend down` (kept until `tend start` or `tend up`)' : 'desired state is stopped';

  if (!obs || !obs.exists) {
    return wantStopped ? entry('none', [], [`not created: ${stopWhy}`]) : entry('create');
  }
  const notes: string[] = [];
  if (obs.corrupt.length > 0) notes.push(`state rebuilt from observation (corrupt: ${obs.corrupt.join(', ')})`);
  const alive = obs.power === 'running' || obs.power === 'paused' || obs.power === 'unknown';
  const unfinishedClone = alive && obs.clonePending === true;
  const cloneRestart = (changed: string[], more: string[] = []): PlanEntry => ({
    ...entry('restart', changed, [...notes, `${UNFINISHED_CLONE}: restarted`, ...more]),
    reason: UNFINISHED_CLONE,
  });

  if (wantStopped) {
    return alive ? entry('stop', [], [stopWhy, ...notes]) : entry('none', [], [stopWhy, ...notes]);
  }

  if (!obs.applied) {
    // The record of what the VM was started with is gone: nothing to diff, so rewrite it
    // (prepare is idempotent and keeps the disk) rather than restart a VM on a guess.
    notes.push('settings record missing: it is written again');
    if (unfinishedClone) return cloneRestart([]);
    return alive ? entry('reseed', [], notes) : entry('start', [], notes);
  }

  const diff = diffSpecs(obs.applied, vm);
  const byClass = (c: FieldClass) => diff.filter((d) => d.cls === c).map((d) => d.text);
  const recreate = byClass('recreate');
  const restart = byClass('restart');
  const seed = byClass('seed');
  const live = byClass('live');
  if (live.length > 0) notes.push(`applied live: ${live.map((t) => t.split(':')[0]).join(', ')}`);

  if (recreate.length > 0) {
    // snapshots live in the disk: a recreate drops them, so it is never implied by disposable alone
    const snaps = obs.snapshots ?? [];
    const drops = snaps.length > 0 ? [`drops its snapshots: ${snaps.join(', ')}`] : [];
    if (opts.recreate || (vm.disposable && snaps.length === 0)) {
      return entry(
        'recreate',
        [...recreate, ...restart, ...seed],
        [...notes, `disk replaced (${opts.recreate ? '--recreate' : 'disposable'}); named volumes kept`, ...drops],
      );
    }
    // never left running with its template's identity: restarted on its disk, the new disk still to come
    if (unfinishedClone)
      return cloneRestart(
        [...restart, ...seed],
        [`still needs a new disk (${recreate.join('; ')}): run \`tend up --recreate\` or set disposable: true`],
      );
    return entry('recreate-required', recreate, [
      ...notes,
      snaps.length > 0
        ? `needs a new disk, which drops its snapshots (${snaps.join(', ')}): left ${alive ? 'running' : 'as it is'}; run \`tend up --recreate\` to replace it anyway`
        : `needs a new disk: left ${alive ? 'running' : 'as it is'}; run \`tend up --recreate\` or set disposable: true`,
      ...(restart.length + seed.length > 0 ? [`also pending: ${[...restart, ...seed].join('; ')}`] : []),
    ]);
  }
  if (!alive) return entry('start', [...restart, ...seed], seed.length > 0 ? [...notes, SEED_NOTE] : notes);
  if (unfinishedClone) return cloneRestart([...restart, ...seed], seed.length > 0 ? [SEED_NOTE] : []);
  if (obs.power === 'unknown') return entry('restart', [...restart, ...seed], [...notes, 'QEMU does not answer on its QMP socket']);
  if (restart.length > 0) return entry('restart', [...restart, ...seed], seed.length > 0 ? [...notes, SEED_NOTE] : notes);
  if (seed.length > 0) return entry('reseed', seed, [...notes, SEED_NOTE]);
  if (obs.power === 'paused') notes.push('paused: `tend resume` continues it');
  return entry('none', [], notes);
}

interface FieldDiff {
  cls: FieldClass;
  text: string;
}

function diffSpecs(applied: VmSpec, desired: VmSpec): FieldDiff[] {
  const out: FieldDiff[] = [];
  for (const key of Object.keys(FIELD_CLASS) as (keyof VmSpec)[]) {
    const a = applied[key];
    const d = desired[key];
    if (stableJson(a) === stableJson(d)) continue;
    let cls = FIELD_CLASS[key];
    if (key === 'disk' && isShrink(applied.disk, desired.disk)) cls = 'recreate';
    out.push({ cls, text: `${key}: ${show(a)} → ${show(d)}${key === 'disk' && cls === 'recreate' ? ' (shrink)' : ''}` });
  }
  return out;
}

/** A disk can grow in place; going smaller (or back to the image's own size) needs a new disk. */
function isShrink(from: number | null, to: number | null): boolean {
  return from !== null && (to === null || to < from);
}

function show(v: unknown): string {
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'object') {
    const s = stableJson(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  }
  return String(v);
}

/** JSON with sorted object keys, so field order never reads as a change. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : value,
  );
}

const VERB: Record<PlanAction, string> = {
  create: 'create',
  start: 'start',
  restart: 'restart with new settings (disk kept)',
  recreate: 'recreate (new disk)',
  'recreate-required': 'RecreateRequired (left as is)',
  reseed: 'write a new seed',
  stop: 'stop',
  orphan: 'orphan (reported)',
  prune: 'prune (delete)',
  none: 'nothing to do',
};

export function describeAction(e: PlanEntry): string {
  const parts = [VERB[e.action]];
  if (e.changed.length > 0) parts.push(`(${e.changed.join('; ')})`);
  return parts.join(' ');
}

/** True when the entry changes something (used for "converged" checks and exit codes). */
export function isMutating(e: PlanEntry): boolean {
  return e.action !== 'none' && e.action !== 'orphan' && e.action !== 'recreate-required';
}
