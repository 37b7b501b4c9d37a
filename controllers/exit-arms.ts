/**
 * The exit watchers of `tend watch`: one Backend.watchExit per running VM's process, re-pointed
 * after every observation. A VM found dead that was being watched, without its exit having been
 * reported, is an exit too (the event was missed): `arm` returns those.
 */
import type { Project } from '../schemas/model.js';
import { alive, type Backend, type Observed, type VmExit } from '../schemas/ports.js';

export class ExitArms {
  private readonly armed = new Map<string, { pid: number; off: () => void }>();

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
      if (!this.armed.has(vm) && !alive(observed.vms[vm]?.power)) missed.push({ vm, pid, kind: 'failure' });
    }
    for (const [vm, a] of this.armed) {
      const o = observed.vms[vm];
      if (alive(o?.power) && o?.pid === a.pid) continue;
      a.off();
      this.armed.delete(vm);
      if (!alive(o?.power)) missed.push({ vm, pid: a.pid, kind: 'failure' });
    }
    for (const [vm, o] of Object.entries(observed.vms)) {
      if (!alive(o.power) || o.pid === null || this.armed.has(vm) || !this.backend.watchExit) continue;
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

  close(): void {
    for (const a of this.armed.values()) a.off();
    this.armed.clear();
  }
}
