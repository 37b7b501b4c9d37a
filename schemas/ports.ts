/**
 * The contract between policy (controllers/) and mechanism (src/): what the controller may
 * observe and ask of a backend. controllers/ never spawns a process or touches fs itself; it
 * receives a `Backend` (QEMU today; libvirt or KubeVirt export later).
 */
import type { Readable, Writable } from 'node:stream';
import type { Project, VmSpec } from './model.js';

/** A VM's power state as observed: see ObservedVm.power. */
export type Power = 'running' | 'paused' | 'stopped' | 'unknown';

/** A VM whose process is there (running, paused, or hung: `unknown`). The one definition. */
export function alive(power: Power | undefined): boolean {
  return power === 'running' || power === 'paused' || power === 'unknown';
}

/** What is really there for one VM, observed now (never a saved belief about the process). */
export interface ObservedVm {
  name: string;
  /** the VM's disk exists (it was prepared at least once) */
  exists: boolean;
  /**
   * running/paused: our QEMU is alive (pid alive, cmdline is this VM's, QMP answers).
   * stopped: no process. unknown: a process but QMP does not answer (hung).
   */
  power: Power;
  pid: number | null;
  /** the spec the VM was last prepared/started with (recorded by the backend), null if none */
  applied: VmSpec | null;
  /** the image (identity: resolved path + checksum) the disk was created from */
  diskImage: string | null;
  /** accelerator the running process uses */
  accel: 'kvm' | 'tcg' | null;
  /** host ports in use: guest "port/proto" -> "addr:port"; ssh under "ssh" */
  ports: Record<string, string>;
  sshPort: number | null;
  /** imperative intent recorded by `tend stop` (honoured until `tend start` / `tend up` clears it) */
  intent: 'stopped' | null;
  /** hashes of provision steps recorded as succeeded, in order */
  provisioned: string[];
  /** when the process started (ms since epoch), null if not running */
  startedAt: number | null;
  /**
   * readiness (SSH, cloud-init, healthcheck) was observed for this very process: a record made by
   * `Backend.markReady(true)` names the running process (same pid and start time) and was not
   * withdrawn since. Absent or false: readiness must be checked again (issue 13, "False Ready").
   */
  ready?: boolean;
  /**
   * The VM is stopped with its RAM and device state saved (`stop --save`, `stop: save`): the next
   * start restores it when it is still valid (docs/warm.md). Absent or null: nothing saved.
   */
  saved?: SavedState | null;
  /**
   * The VM's disk is a warm clone whose identity step has not finished (its `clone.json` is still
   * there: src/qemu/clone.ts): not started yet, or started by a tend that was stopped before the
   * step's end. Running so, the guest has its template's identity. Absent: not observed.
   */
  clonePending?: boolean;
  /** names of the VM's snapshots (issue 15 §3): a recreate drops them. Absent: not observed */
  snapshots?: string[];
  /** state files that were corrupt and will be rebuilt */
  corrupt: string[];
}

/** A saved state as observed: its size and when it was written (null: not observable, e.g. on another host). */
export interface SavedState {
  bytes: number | null;
  /** ms since epoch */
  savedAt: number | null;
}

export interface Observed {
  /** VMs tend has state for in this project, by name (including orphans) */
  vms: Record<string, ObservedVm>;
}

export interface StartResult {
  pid: number;
  accel: 'kvm' | 'tcg';
  sshPort: number;
  ports: Record<string, string>;
  /** the guest was restored from a saved state, not booted (its clock must be stepped; no cloud-init wait) */
  restored?: boolean;
}

export interface StopOptions {
  /** seconds to wait after ACPI powerdown before SIGTERM (then SIGKILL) */
  timeout: number;
  /**
   * save the VM's RAM and device state instead of powering it off, so the next start restores it
   * (a backend that cannot refuses with a clear error). A VM not observed Ready is powered off.
   */
  save?: boolean;
}

export interface StopResult {
  /** the VM's RAM and device state were saved: the next start restores them */
  saved: boolean;
}

/** Bytes of a download so far; `total` is null when the server sent no length. */
export interface ByteProgress {
  received: number;
  total: number | null;
}

export interface PrepareOptions {
  /** replace the VM's disk (recreate): the old overlay is deleted, a new one made */
  recreateDisk: boolean;
  /** progress lines for humans (downloads, image builds and conversion, disk creation) */
  onProgress?: (message: string) => void;
  /**
   * byte progress of an image download (a bar on a terminal, a periodic line otherwise); when it
   * is given, the download's own "40 % of ..." lines are left out of `onProgress`
   */
  onDownload?: (p: ByteProgress) => void;
}

/**
 * What a VM's long step is doing now (an image download, a build step, a readiness stage),
 * for a live display. Not an event: never recorded in events.jsonl, superseded by the next one.
 */
export interface VmProgress {
  vm: string;
  /** in words: "downloading debian:12 from https://...", "creating disk over ..." */
  message: string;
  /** set while a download runs */
  download?: ByteProgress;
}

/*
 * A backend is a few small roles. The controller needs `Lifecycle` and `Observe`; exit-watch,
 * console and volumes are optional (a backend without them degrades: watch notices exits at its
 * periodic resync only, `tend console` / `tend volume rm` say the backend cannot). The QEMU
 * backend (src/qemu/backend.ts) and the libvirt backend (src/libvirt/) implement all of them.
 * Every method is idempotent and honours `signal`.
 */

/** Lifecycle: make a VM exist, run, stop and go away. */
export interface Lifecycle {
  /** Resolve the image, create/resize the disk overlay, keys, seed ISO, volumes. No process. */
  prepare(project: Project, vm: VmSpec, opts: PrepareOptions, signal?: AbortSignal): Promise<void>;
  /** Start the VM detached with the prepared disk; resolves once it reports running. */
  start(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult>;
  /**
   * ACPI powerdown, wait, SIGTERM, SIGKILL (or, with `opts.save`, save its state and stop). No-op
   * if not running. Resolves with `saved: true` when the VM's state was saved.
   */
  stop(project: Project, name: string, opts: StopOptions, signal?: AbortSignal): Promise<StopResult | void>;
  suspend(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  resume(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  /** Stop if needed and delete the VM's folder (disk, seed, keys). Named volumes are kept. */
  destroy(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  /** Record (or clear, with null) an imperative intent for a VM. */
  setIntent(project: Project, name: string, intent: 'stopped' | null): Promise<void>;
  /**
   * Record that the VM's running process was observed ready (true), or withdraw it (false).
   * The record names the process (pid, start time): `observe` reports `ready` only while that
   * same process runs. Optional: without it readiness is checked over SSH on every converge.
   */
  markReady?(project: Project, name: string, ready: boolean): Promise<void>;
}

/** Observe: what is really there, now. */
export interface Observe {
  /** Observe every VM the backend knows for this project (including orphans). */
  observe(project: Project, signal?: AbortSignal): Promise<Observed>;
  /** Where a VM's state lives (for `tend status`): label -> path or URI. Nothing is read. */
  locate(project: Project, name: string): Record<string, string>;
}

/** Exit-watch: event-driven crash detection for `tend watch`. */
export interface ExitWatch {
  /**
   * Call `onExit` (once) as soon as the VM's process `pid` ends (within a second). Returns a
   * function that stops watching. `pid` 0: the VM was observed running without a known process
   * (libvirt in the middle of a `virsh destroy`); a backend that can watch it by name does (libvirt:
   * the domain's events and state), one that cannot returns a no-op.
   */
  watchExit(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void;
}

/** The terminal side of a console session (the caller owns raw mode). */
export interface ConsoleIo {
  input: Readable;
  output: Writable;
  /** called once connected, before any console output is copied */
  onAttached?: () => void;
}

/** How a console session ended: the user detached (Ctrl-]), or the VM side closed (VM stopped). */
export type ConsoleEnd = 'detached' | 'closed';

/** Console: the VM's serial console, attachable at any time (during boot too). */
export interface ConsoleAccess {
  attachConsole(project: Project, name: string, io: ConsoleIo, signal?: AbortSignal): Promise<ConsoleEnd>;
}

/** A named volume as the backend sees it. */
export interface VolumeObserved {
  name: string;
  /** where it lives (file path or URI) */
  path: string;
  /** bytes it takes on the host */
  allocated: number | null;
  /** virtual size in bytes; null when unreadable */
  virtualSize: number | null;
}

/** Volumes: the project's named volumes (they outlive every VM). */
export interface Volumes {
  /** The volumes that exist (were created) for this project, sorted by name. */
  listVolumes(project: Project, signal?: AbortSignal): Promise<VolumeObserved[]>;
  /** Where a volume of this name lives (or would be created). */
  volumePath(project: Project, name: string): string;
  /** Delete named volumes (`tend down --volumes`, `tend volume rm`); never called by converge. */
  removeVolumes(project: Project, names: string[], signal?: AbortSignal): Promise<void>;
}

/** A VM backend: lifecycle and observe, plus the optional roles it has. */
export interface Backend extends Lifecycle, Observe, Partial<ExitWatch>, Partial<ConsoleAccess>, Partial<Volumes>, Partial<Snapshots> {}

/** A named snapshot of a VM (issue 15 §3). */
export interface SnapshotInfo {
  name: string;
  /** ms since epoch */
  createdAt: number;
  /** it holds the VM's memory and device state (taken while it ran), not only its disks */
  vmState: boolean;
  vmStateBytes: number;
}

/** What a snapshot restore did. */
export interface SnapshotRestore {
  /** the VM runs (its memory was loaded: the guest is back where it was) */
  running: boolean;
  /** its memory was restored too (false: disks only, the VM is stopped) */
  memory: boolean;
}

/** Snapshots: named points a VM's disks (and memory, when it runs) can go back to. */
export interface Snapshots {
  /** oldest first; [] for a VM without a disk */
  listSnapshots(project: Project, name: string, signal?: AbortSignal): Promise<SnapshotInfo[]>;
  saveSnapshot(project: Project, name: string, snap: string, signal?: AbortSignal): Promise<SnapshotInfo>;
  restoreSnapshot(project: Project, name: string, snap: string, signal?: AbortSignal): Promise<SnapshotRestore>;
  removeSnapshot(project: Project, name: string, snap: string, signal?: AbortSignal): Promise<void>;
}

/** A backend with every role (QEMU, libvirt). */
export type FullBackend = Lifecycle & Observe & ExitWatch & ConsoleAccess & Volumes;

/** A VM's process ended (reported by Backend.watchExit). */
export interface VmExit {
  vm: string;
  pid: number;
  /** failure: killed or crashed; clean: it ended normally (guest poweroff, QEMU quitting on SIGTERM) */
  kind: 'failure' | 'clean';
}

/** Access to a running guest (SSH). Readiness is staged; provisioning is the last reconcile step. */
export interface Guest {
  /**
   * Resolve once the guest is reachable over SSH and cloud-init (when used) has finished.
   * `restored`: the guest was restored from a saved state: its clock is stepped to the host's.
   */
  waitReady(
    project: Project,
    vm: VmSpec,
    signal?: AbortSignal,
    /**
     * restored: the guest comes from a saved state (its clock stood still). provisionNext:
     * `provision` of this VM follows at once, so the guest may keep its last connection for it.
     */
    opts?: { restored?: boolean; provisionNext?: boolean },
  ): Promise<void>;
  /** Run the VM's provision steps that are not already recorded as done (layer cache). */
  provision(project: Project, vm: VmSpec, opts: { force: boolean }, signal?: AbortSignal): Promise<void>;
  /**
   * True when some provision step's identity (hash of definition and content) is not among
   * `recorded`. Local only (hashes files on the host), never touches the guest: this is what lets
   * converge skip the SSH round trip for a VM that is already running and provisioned.
   * Optional: without it the controller compares step counts with the record.
   */
  provisionPending?(project: Project, vm: VmSpec, recorded: readonly string[], signal?: AbortSignal): Promise<boolean>;
}

/** Injected time source, so timeouts and backoff are testable without sleeping. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Why an event happened (UpperCamelCase, stable: `tend events` users filter on them). */
export type Reason =
  | 'BackOff'
  | 'DependencyNotReady'
  | 'FilesChanged'
  | 'NotRetried'
  | 'OrphanFound'
  | 'Orphaned'
  | 'ProjectFileMissing'
  | 'ProjectInvalid'
  | 'ProjectValid'
  | 'ReconcileFailed'
  | 'Reconciled'
  | 'ProvisionStepFailed'
  | 'RecreateRequired'
  | 'VmDestroyed'
  | 'VmDestroying'
  | 'VmExited'
  | 'VmFailed'
  | 'VmPrepared'
  | 'VmPreparing'
  | 'VmProvisioned'
  | 'VmProvisioning'
  | 'VmPruned'
  | 'VmReady'
  | 'VmResumed'
  | 'VmStarted'
  | 'VmStarting'
  | 'VmStopped'
  | 'VmStopping'
  | 'VmSuspended'
  | 'VolumesRemoved'
  | 'WatchError'
  | 'WatchStarted'
  | 'WatchStopped';

/** Something that happened, for `tend events` and watch output. */
export interface TendEvent {
  time: string;
  type: 'Normal' | 'Warning';
  reason: Reason;
  vm?: string;
  message: string;
}

/** Build an event stamped at `now` (ms since epoch, from the injected clock). The one constructor. */
export function tendEvent(now: number, type: TendEvent['type'], reason: Reason, vm: string | undefined, message: string): TendEvent {
  return { time: new Date(now).toISOString(), type, reason, ...(vm ? { vm } : {}), message };
}
