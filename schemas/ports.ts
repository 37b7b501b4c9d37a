/**
 * The contract between policy (controllers/) and mechanism (src/): what the controller may
 * observe and ask of a backend. controllers/ never spawns a process or touches fs itself; it
 * receives a `Backend` (QEMU today; libvirt or KubeVirt export later).
 */
import type { Project, VmSpec } from './model.js';

/** What is really there for one VM, observed now (never a saved belief about the process). */
export interface ObservedVm {
  name: string;
  /** the VM's disk exists (it was prepared at least once) */
  exists: boolean;
  /**
   * running/paused: our QEMU is alive (pid alive, cmdline is this VM's, QMP answers).
   * stopped: no process. unknown: a process but QMP does not answer (hung).
   */
  power: 'running' | 'paused' | 'stopped' | 'unknown';
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
  /** state files that were corrupt and will be rebuilt */
  corrupt: string[];
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
}

export interface StopOptions {
  /** seconds to wait after ACPI powerdown before SIGTERM (then SIGKILL) */
  timeout: number;
}

export interface PrepareOptions {
  /** replace the VM's disk (recreate): the old overlay is deleted, a new one made */
  recreateDisk: boolean;
  /** progress lines for humans (downloads, image conversion) */
  onProgress?: (message: string) => void;
}

/** A VM backend. Every method is idempotent and honours `signal`. */
export interface Backend {
  /** Observe every VM the state dir knows for this project (plus the given names). */
  observe(project: Project, signal?: AbortSignal): Promise<Observed>;
  /** Resolve the image, create/resize the disk overlay, keys, seed ISO, volumes. No process. */
  prepare(project: Project, vm: VmSpec, opts: PrepareOptions, signal?: AbortSignal): Promise<void>;
  /** Start QEMU detached with the prepared disk; resolves once QMP reports running. */
  start(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult>;
  /** ACPI powerdown, wait, SIGTERM, SIGKILL. No-op if not running. */
  stop(project: Project, name: string, opts: StopOptions, signal?: AbortSignal): Promise<void>;
  suspend(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  resume(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  /** Stop if needed and delete the VM's folder (disk, seed, keys). Named volumes are kept. */
  destroy(project: Project, name: string, signal?: AbortSignal): Promise<void>;
  /** Record (or clear, with null) an imperative intent for a VM. */
  setIntent(project: Project, name: string, intent: 'stopped' | null): Promise<void>;
  /**
   * Delete named volumes of the project (`tend down --volumes`); never called by converge.
   * Optional: a backend without it cannot delete volumes (the caller reports that).
   */
  removeVolumes?(project: Project, names: string[], signal?: AbortSignal): Promise<void>;
  /**
   * Call `onExit` (once) as soon as the VM's process `pid` ends (`tend watch`: crash detection
   * within a second, event-driven). Returns a function that stops watching. Optional: without it
   * `tend watch` notices exits at its periodic resync only.
   */
  watchExit?(project: Project, name: string, pid: number, onExit: (e: VmExit) => void): () => void;
}

/** A VM's process ended (reported by Backend.watchExit). */
export interface VmExit {
  vm: string;
  pid: number;
  /** failure: killed or crashed; clean: it ended normally (guest poweroff, QEMU quitting on SIGTERM) */
  kind: 'failure' | 'clean';
}

/** Access to a running guest (SSH). Readiness is staged; provisioning is the last reconcile step. */
export interface Guest {
  /** Resolve once the guest is reachable over SSH and cloud-init (when used) has finished. */
  waitReady(project: Project, vm: VmSpec, signal?: AbortSignal): Promise<void>;
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

/** Something that happened, for `tend events` and watch output. Reasons are UpperCamelCase. */
export interface TendEvent {
  time: string;
  type: 'Normal' | 'Warning';
  reason: string;
  vm?: string;
  message: string;
}

/** A VM whose process is there (running, paused, or hung: `unknown`). The one definition. */
export function alive(power: ObservedVm['power'] | undefined): boolean {
  return power === 'running' || power === 'paused' || power === 'unknown';
}

/** Build an event stamped at `now` (ms since epoch, from the injected clock). The one constructor. */
export function tendEvent(now: number, type: TendEvent['type'], reason: string, vm: string | undefined, message: string): TendEvent {
  return { time: new Date(now).toISOString(), type, reason, ...(vm ? { vm } : {}), message };
}
