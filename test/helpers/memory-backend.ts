/**
 * An in-memory Backend + Guest for controller tests. It records every call in order (begin and
 * end, so tests can assert overlap), can be told to fail, hang, or hold a call for a VM, honours
 * AbortSignal (a hung or held call rejects with an AbortError when aborted), and its observe()
 * reflects what it has done.
 */
import type { Project, VmSpec } from '../../schemas/model.js';
import type {
  Backend,
  Guest,
  Observed,
  ObservedVm,
  PrepareOptions,
  StartResult,
  StopOptions,
  StopResult,
  VmExit,
} from '../../schemas/ports.js';

export type Method =
  | 'observe'
  | 'prepare'
  | 'start'
  | 'stop'
  | 'suspend'
  | 'resume'
  | 'destroy'
  | 'setIntent'
  | 'markReady'
  | 'removeVolumes'
  | 'waitReady'
  | 'provision'
  | 'provisionPending';

export const MUTATING: ReadonlySet<Method> = new Set([
  'prepare',
  'start',
  'stop',
  'suspend',
  'resume',
  'destroy',
  'setIntent',
  'removeVolumes',
  'provision',
]);

export interface CallRecord {
  seq: number;
  phase: 'begin' | 'end' | 'error' | 'abort';
  method: Method;
  vm: string;
  detail?: unknown;
}

interface VmState {
  exists: boolean;
  power: ObservedVm['power'];
  pid: number | null;
  applied: VmSpec | null;
  diskImage: string | null;
  intent: 'stopped' | null;
  provisioned: string[];
  startedAt: number | null;
  /** readiness recorded for the running process (markReady) */
  ready: boolean;
  /** bumped every time a new disk is made */
  disk: number;
}

interface Hold {
  gate: Promise<void>;
  reached: Promise<void>;
  markReached: () => void;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Identity of a provision step here: its JSON (the real guest hashes definition + content). */
export const stepId = (s: VmSpec['provision'][number]): string => JSON.stringify(s);

export class MemoryBackend implements Backend, Guest {
  readonly log: CallRecord[] = [];
  readonly vms = new Map<string, VmState>();
  readonly volumesRemoved: string[] = [];
  private seq = 0;
  private nextPid = 1000;
  private failures = new Map<string, Error>();
  private hangs = new Set<string>();
  private holds = new Map<string, Hold>();
  private inFlightCount = 0;
  private now: () => number;
  /** a signal seen by each call, by "method:vm" (the last one) */
  readonly signals = new Map<string, AbortSignal | undefined>();

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? (() => 0);
  }

  // ---- test controls -------------------------------------------------------------------------

  /** Make every future `method` call for `vm` reject with `error`. */
  failOn(method: Method, vm: string, error: Error | string): void {
    this.failures.set(`${method}:${vm}`, typeof error === 'string' ? new Error(error) : error);
  }

  /** Make `method` calls for `vm` hang until aborted. */
  hangOn(method: Method, vm: string): void {
    this.hangs.add(`${method}:${vm}`);
  }

  /**
   * Hold the next `method` call for `vm` until the returned `release()`; `reached` resolves once the
   * call is in flight. Aborting its signal rejects it.
   */
  hold(method: Method, vm: string): { release: () => void; reached: Promise<void> } {
    let release!: () => void;
    let markReached!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (markReached = r));
    this.holds.set(`${method}:${vm}`, { gate, reached, markReached });
    return { release, reached };
  }

  /** Put a VM in place as if an earlier tend had made it (and, when running, seen it Ready). */
  seed(name: string, state: Partial<VmState> & { applied: VmSpec | null }): void {
    this.vms.set(name, {
      exists: true,
      power: 'running',
      pid: this.nextPid++,
      diskImage: state.applied?.image.ref ?? null,
      intent: null,
      provisioned: [],
      startedAt: 0,
      ready: (state.power ?? 'running') !== 'stopped',
      disk: 1,
      ...state,
    });
  }

  /** The VM's process dies (kill -9): no process, no readiness. Returns the dead pid. */
  kill(name: string): number {
    const s = this.state(name);
    const pid = s.pid ?? 0;
    s.power = 'stopped';
    s.pid = null;
    s.startedAt = null;
    s.ready = false;
    for (const w of this.exitWatches.filter((x) => x.vm === name && x.pid === pid)) w.onExit({ vm: name, pid, kind: 'failure' });
    return pid;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** The calls (begin records) in order, as "method vm" strings. */
  calls(filter?: (r: CallRecord) => boolean): string[] {
    return this.log.filter((r) => r.phase === 'begin' && (!filter || filter(r))).map((r) => `${r.method} ${r.vm}`);
  }

  mutatingCalls(): string[] {
    return this.calls((r) => MUTATING.has(r.method));
  }

  /** seq of the given phase of the first matching call (begin by default), -1 if none */
  seqOf(method: Method, vm: string, phase: CallRecord['phase'] = 'begin'): number {
    return this.log.find((r) => r.method === method && r.vm === vm && r.phase === phase)?.seq ?? -1;
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  private async call<T>(method: Method, vm: string, signal: AbortSignal | undefined, detail: unknown, body: () => T): Promise<T> {
    const key = `${method}:${vm}`;
    this.log.push({ seq: this.seq++, phase: 'begin', method, vm, detail });
    this.signals.set(key, signal);
    this.inFlightCount++;
    try {
      await Promise.resolve();
      if (signal?.aborted) throw abortError(signal);
      const hold = this.holds.get(key);
      if (hold) {
        this.holds.delete(key);
        hold.markReached();
        await this.waitOrAbort(hold.gate, signal);
      }
      if (this.hangs.has(key)) await this.waitOrAbort(new Promise<void>(() => undefined), signal);
      const failure = this.failures.get(key);
      if (failure) throw failure;
      const out = body();
      this.log.push({ seq: this.seq++, phase: 'end', method, vm });
      return out;
    } catch (e) {
      this.log.push({
        seq: this.seq++,
        phase: signal?.aborted ? 'abort' : 'error',
        method,
        vm,
        detail: e instanceof Error ? e.message : String(e),
      });
      throw e;
    } finally {
      this.inFlightCount--;
    }
  }

  private waitOrAbort(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    if (!signal) return p;
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(abortError(signal));
      const onAbort = (): void => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, reject);
    });
  }

  private state(name: string): VmState {
    let s = this.vms.get(name);
    if (!s) {
      s = {
        exists: false,
        power: 'stopped',
        pid: null,
        applied: null,
        diskImage: null,
        intent: null,
        provisioned: [],
        startedAt: null,
        ready: false,
        disk: 0,
      };
      this.vms.set(name, s);
    }
    return s;
  }

  // ---- Backend ----------------------------------------------------------------------------------

  locate(_project: Project, name: string): Record<string, string> {
    return { dir: `memory:${name}` };
  }

  observe(project: Project, signal?: AbortSignal): Promise<Observed> {
    return this.call('observe', '*', signal, project.name, () => {
      const vms: Record<string, ObservedVm> = {};
      for (const [name, s] of this.vms) {
        if (!s.exists && s.intent === null) continue;
        vms[name] = {
          name,
          exists: s.exists,
          power: s.power,
          pid: s.pid,
          applied: s.applied,
          diskImage: s.diskImage,
          accel: s.power === 'stopped' ? null : 'tcg',
          ports: {},
          sshPort: s.power === 'stopped' ? null : 2222,
          intent: s.intent,
          provisioned: [...s.provisioned],
          startedAt: s.startedAt,
          ready: s.ready && s.power !== 'stopped',
          corrupt: [],
        };
      }
      return { vms };
    });
  }

  prepare(_project: Project, vm: VmSpec, opts: PrepareOptions, signal?: AbortSignal): Promise<void> {
    return this.call('prepare', vm.name, signal, { recreateDisk: opts.recreateDisk, spec: vm }, () => {
      const s = this.state(vm.name);
      if (!s.exists || opts.recreateDisk) {
        s.disk++;
        s.provisioned = [];
        s.diskImage = vm.image.ref;
      }
      s.exists = true;
      s.applied = vm;
    });
  }

  start(_project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> {
    return this.call('start', vm.name, signal, undefined, () => {
      const s = this.state(vm.name);
      if (!s.exists) throw new Error(`${vm.name}: not prepared`);
      if (s.power !== 'running') {
        s.power = 'running';
        s.pid = this.nextPid++;
        s.startedAt = this.now();
        s.ready = false;
      }
      s.applied = vm;
      return { pid: s.pid ?? 0, accel: 'tcg' as const, sshPort: 2222, ports: {} };
    });
  }

  stop(_project: Project, name: string, opts: StopOptions, signal?: AbortSignal): Promise<StopResult | void> {
    return this.call('stop', name, signal, opts, () => {
      const s = this.state(name);
      // like the QEMU backend: only a VM observed Ready has its memory saved
      const saved = opts.save === true && s.ready && s.power === 'running';
      s.power = 'stopped';
      s.pid = null;
      s.startedAt = null;
      s.ready = false;
      return opts.save ? { saved } : undefined;
    });
  }

  suspend(_project: Project, name: string, signal?: AbortSignal): Promise<void> {
    return this.call('suspend', name, signal, undefined, () => {
      const s = this.state(name);
      if (s.power === 'running') s.power = 'paused';
    });
  }

  resume(_project: Project, name: string, signal?: AbortSignal): Promise<void> {
    return this.call('resume', name, signal, undefined, () => {
      const s = this.state(name);
      if (s.power === 'paused') s.power = 'running';
    });
  }

  destroy(_project: Project, name: string, signal?: AbortSignal): Promise<void> {
    return this.call('destroy', name, signal, undefined, () => {
      this.vms.delete(name);
    });
  }

  setIntent(_project: Project, name: string, intent: 'stopped' | null): Promise<void> {
    return this.call('setIntent', name, undefined, intent, () => {
      this.state(name).intent = intent;
    });
  }

  markReady(_project: Project, name: string, ready: boolean): Promise<void> {
    return this.call('markReady', name, undefined, ready, () => {
      const s = this.state(name);
      s.ready = ready && s.power !== 'stopped';
    });
  }

  /**
   * Exit watching is opt-in (`watchExits = true`), as most tests drive exits by hand: then every
   * `kill(name)` reports the exit to the watchers of that pid.
   */
  watchExits = false;
  readonly exitWatches: { vm: string; pid: number; onExit: (e: VmExit) => void }[] = [];

  watchExit?: (project: Project, name: string, pid: number, onExit: (e: VmExit) => void) => () => void = (_p, vm, pid, onExit) => {
    if (!this.watchExits) return () => undefined;
    const w = { vm, pid, onExit };
    this.exitWatches.push(w);
    return () => {
      const i = this.exitWatches.indexOf(w);
      if (i >= 0) this.exitWatches.splice(i, 1);
    };
  };

  removeVolumes(_project: Project, names: string[], signal?: AbortSignal): Promise<void> {
    return this.call('removeVolumes', '*', signal, names, () => {
      this.volumesRemoved.push(...names);
    });
  }

  // ---- Guest ------------------------------------------------------------------------------------

  waitReady(_project: Project, vm: VmSpec, signal?: AbortSignal, opts?: { restored?: boolean; provisionNext?: boolean }): Promise<void> {
    return this.call('waitReady', vm.name, signal, opts, () => {
      if (this.state(vm.name).power !== 'running') throw new Error(`${vm.name}: not running`);
    });
  }

  provision(_project: Project, vm: VmSpec, opts: { force: boolean }, signal?: AbortSignal): Promise<void> {
    return this.call('provision', vm.name, signal, opts, () => {
      this.state(vm.name).provisioned = vm.provision.map(stepId);
    });
  }

  provisionPending(_project: Project, vm: VmSpec, recorded: readonly string[], signal?: AbortSignal): Promise<boolean> {
    return this.call('provisionPending', vm.name, signal, undefined, () => {
      const ids = vm.provision.map(stepId);
      return ids.length !== recorded.length || ids.some((id, i) => recorded[i] !== id);
    });
  }
}
