/**
 * The exit watchers of `tend watch`: one Backend.watchExit per running VM's process, re-pointed
 * after every observation. A VM found dead that was being watched, without its exit having been
 * reported, is an exit too (the event was missed): `arm` returns those.
 *
 * A VM observed running without a process id (libvirt: the domain is still "running" while its
 * QEMU is already gone, in the middle of a `virsh destroy`) cannot be watched: it is unsettled,
 * and `settleAfterMs` says when to observe again. Found dead then, it is an exit like any other.
 */
import type { Project } from '../schemas/model.js';
import { alive, type Backend, type Observed, type VmExit } from '../schemas/ports.js';

/** the first re-observation of an unsettled VM, doubled each time it is still unsettled */
const SETTLE_FIRST_MS = 250;
const SETTLE_MAX_MS = 5000;

export class ExitArms {
  private readonly armed = new Map<string, { pid: number; off: () => void }>();
  /** running VMs without a pid: their last known pid (0 if none), and how many looks so far */
  private readonly unsettled = new Map<string, { pid: number; looks: number }>();

  constructor(
    private readonly backend: Backend,
    private readonly onExit: (e: VmExit) => void,
  ) {}

  /**
   * Watch every VM `observed` running; returns the exits that were missed. `leftRunning`: VMs
   * (with their last known pid) that a pass has just left running but that were not watched
   * yet: one found dead here died between the pass and this observation, which is an exit too.
   */
  arm(project: Project, observed: Observed, leftRunning: ReadonlyMap<string, number> = new Map()): VmExit[] {
    const missed: VmExit[] = [];
    for (const [vm, pid] of leftRunning) {
      if (!this.armed.has(vm) && !this.unsettled.has(vm) && !alive(observed.vms[vm]?.power)) missed.push({ vm, pid, kind: 'failure' });
    }
    for (const [vm, a] of this.armed) {
      const o = observed.vms[vm];
      if (alive(o?.power) && o?.pid === a.pid) continue;
      a.off();
      this.armed.delete(vm);
      if (!alive(o?.power)) missed.push({ vm, pid: a.pid, kind: 'failure' });
    }
    for (const [vm, u] of this.unsettled) {
      const o = observed.vms[vm];
      if (alive(o?.power) && o?.pid === null) {
        u.looks++;
        continue;
      }
      this.unsettled.delete(vm);
      if (!alive(o?.power)) missed.push({ vm, pid: u.pid, kind: 'failure' });
    }
    for (const [vm, o] of Object.entries(observed.vms)) {
      if (!alive(o.power) || this.armed.has(vm) || this.unsettled.has(vm) || !this.backend.watchExit) continue;
      if (o.pid === null) {
        this.unsettled.set(vm, { pid: leftRunning.get(vm) ?? 0, looks: 0 });
        continue;
      }
      const pid = o.pid;
      const off = this.backend.watchExit(project, vm, pid, (e) => {
        if (this.armed.get(vm)?.pid !== pid) return;
        this.armed.get(vm)?.off();
        this.armed.delete(vm);
        this.onExit(e);
      });
      this.armed.set(vm, { pid, off });
    }
    return missed;
  }

  /** When to observe again for the VMs running without a pid; null when there are none. */
  settleAfterMs(): number | null {
    if (this.unsettled.size === 0) return null;
    const looks = Math.min(...[...this.unsettled.values()].map((u) => u.looks));
    return Math.min(SETTLE_FIRST_MS * 2 ** looks, SETTLE_MAX_MS);
  }

  close(): void {
    for (const a of this.armed.values()) a.off();
    this.armed.clear();
    this.unsettled.clear();
  }
}
