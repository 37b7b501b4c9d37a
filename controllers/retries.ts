/**
 * `tend watch`'s memory of VMs that are down while desired running: one path for a process
 * that exited and for a reconcile that failed (restart-policy.ts `requeueFor`). A VM in backoff
 * or left down is "held": later passes skip it (and what depends on it) until its timer fires,
 * its desired state changes, or it is seen running again (`tend start web`).
 */
import type { Project, VmSpec } from '../schemas/model.js';
import { alive, type ObservedVm, type TendEvent, type VmExit } from '../schemas/ports.js';
import { dependentsOf } from './affected.js';
import { RestartBook, requeueFor, type BackoffOptions, type Reconciled } from './restart-policy.js';
import type { VmStatus } from './vm-machine.js';

type Emit = (type: TendEvent['type'], reason: TendEvent['reason'], vm: string | undefined, message: string) => void;

const seconds = (ms: number, digits: 0 | 1): string => `${digits === 0 ? Math.round(ms / 1000) : Math.round(ms / 100) / 10}s`;

/** Desired running, and not stopped on purpose (`tend stop`, `state: stopped`). */
function wantedUp(spec: VmSpec | undefined, obs: ObservedVm | undefined): spec is VmSpec {
  return spec !== undefined && spec.runState !== 'stopped' && obs?.intent !== 'stopped';
}

export class Retries {
  private readonly book: RestartBook;
  /** VMs skipped by passes, with why */
  readonly held = new Map<string, string>();

  constructor(
    backoff: BackoffOptions,
    private readonly now: () => number,
    private readonly emit: Emit,
  ) {
    this.book = new RestartBook(backoff);
  }

  /** A new desired state (or a removal): try again from a clean record. */
  forget(vm: string): void {
    this.held.delete(vm);
    this.book.forget(vm);
  }

  /** Its backoff timer fired: the next pass may reconcile it. */
  release(vm: string): void {
    this.held.delete(vm);
  }

  /** Seen running (by us or by a one-shot command): the hold is over. */
  seen(observed: Record<string, ObservedVm>): void {
    for (const [vm, o] of Object.entries(observed)) if (alive(o.power)) this.held.delete(vm);
  }

  /** The names a pass may reconcile: `targets` (or all) without held VMs and their dependents. */
  runnable(project: Project, targets: ReadonlySet<string> | 'all'): string[] | undefined {
    const blocked = new Set([...this.held.keys()].filter((v) => project.vms.some((s) => s.name === v)));
    for (const d of dependentsOf(project, blocked)) blocked.add(d);
    if (targets === 'all') return blocked.size === 0 ? undefined : project.vms.map((v) => v.name).filter((n) => !blocked.has(n));
    return [...targets].filter((n) => !blocked.has(n) && project.vms.some((v) => v.name === n));
  }

  /** The VM's process ended: restart it, later, or not at all. */
  afterExit(e: VmExit, spec: VmSpec | undefined, obs: ObservedVm | undefined): Reconciled<null> {
    if (alive(obs?.power) || !wantedUp(spec, obs)) return { status: null }; // started again already, or a deliberate stop
    const how = `${e.kind === 'failure' ? 'was killed or crashed' : 'shut down'} ${e.pid > 0 ? ` (pid ${e.pid})` : ''}`;
    const r = requeueFor(this.book, e.vm, spec.restart, { kind: e.kind, config: false }, this.now());
    if (r.terminal) {
      this.held.set(e.vm, `left stopped: ${r.why}`);
      this.emit(e.kind === 'failure' ? 'Warning' : 'Normal', 'VmExited', e.vm, `${how}; not restarted: ${r.why}`);
      return { status: null, terminal: true };
    }
    const after = r.requeueAfter ?? 0;
    if (after === 0) this.emit('Warning', 'VmExited', e.vm, `${how}; restarting (restart policy "${spec.restart}")`);
    else {
      this.held.set(e.vm, `crash loop: restart ${r.attempt} in ${seconds(after, 0)}`);
      this.emit('Warning', 'BackOff', e.vm, `${how}, exit ${r.attempt} in a row: restarting in ${seconds(after, 1)}`);
    }
    return { status: null, requeueAfter: after };
  }

  /** What the reconcile of one VM asks for next, from its result and an observation made after it. */
  afterResult(vm: string, status: VmStatus, spec: VmSpec | undefined, obs: ObservedVm | undefined): Reconciled<VmStatus> {
    if (status.state !== 'Failed' || this.held.has(vm) || alive(obs?.power) || !wantedUp(spec, obs)) return { status };
    const r = requeueFor(this.book, vm, spec.restart, { kind: 'failure', config: status.configFault === true }, this.now());
    const failed = `failed (${status.error ?? 'unknown error'})`;
    if (r.terminal) {
      this.held.set(vm, `left stopped: ${r.why}`);
      if (status.configFault) this.emit('Warning', 'NotRetried', vm, `${failed}: ${r.why}`);
      return { status, terminal: true };
    }
    const after = r.requeueAfter ?? 0;
    this.held.set(vm, `retry ${r.attempt} in ${seconds(after, 0)}`);
    const when = after === 0 ? 'retrying now' : `retrying in ${seconds(after, 1)}`;
    this.emit('Warning', 'BackOff', vm, `${failed}, failure ${r.attempt} in a row: ${when}`);
    return { status, requeueAfter: after };
  }
}
