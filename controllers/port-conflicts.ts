/**
 * Host port conflicts, decided before anything starts (so `tend plan` already fails): a fixed
 * host port a VM declares is in conflict when another VM of the project declares the same one,
 * or when a socket on the host holds it that is not this VM's own QEMU. Pure: the host's
 * sockets are observed in src/ (src/net/port-holders.ts) and passed in.
 */
import type { Project, VmSpec } from '../schemas/model.js';
import type { Observed } from '../schemas/ports.js';

/** A socket on the host (the shape src/net/port-holders.ts observes). */
export interface HostSocket {
  protocol: 'tcp' | 'udp';
  address: string;
  port: number;
  pid: number | null;
  command: string | null;
}

export interface PortConflict {
  vm: string;
  hostAddress: string;
  hostPort: number;
  protocol: 'tcp' | 'udp';
  guestPort: number;
  /** another VM of this project declaring the same host port */
  otherVm?: string;
  /** the socket holding it on the host */
  holder?: { pid: number | null; command: string | null; address: string };
  /** one line for a human */
  message: string;
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

function norm(a: string): string {
  const x = a.startsWith('::ffff:') ? a.slice(7) : a;
  return x === 'localhost' ? '127.0.0.1' : x;
}

/** Two bind addresses collide when either is a wildcard or they are the same address. */
export function addressesOverlap(a: string, b: string): boolean {
  const x = norm(a);
  const y = norm(b);
  if (WILDCARD.has(x) || WILDCARD.has(y)) {
    // 0.0.0.0 and a v6-only address do not collide; "::" (dual stack) collides with everything
    const v6 = (s: string): boolean => s.includes(':');
    if (x === '0.0.0.0' && v6(y) && y !== '::') return false;
    if (y === '0.0.0.0' && v6(x) && x !== '::') return false;
    return true;
  }
  return x === y;
}

function describeHolder(s: HostSocket): string {
  if (s.pid === null) return `another process (${s.address}:${s.port}; its owner is not visible to this user)`;
  const cmd = s.command ? s.command.slice(0, 80) : 'unknown command';
  return `pid ${s.pid} (${cmd})`;
}

/**
 * Every fixed host port of the VMs in `names` (default: all) that is taken. A VM's own sockets
 * are not conflicts: the holder's pid is the VM's running QEMU, or (holder unknown) the VM
 * is running and its recorded ports show that very forward.
 */
export function portConflicts(
  project: Project,
  observed: Observed,
  sockets: readonly HostSocket[],
  names?: readonly string[],
): PortConflict[] {
  const targets = project.vms.filter((v) => !names || names.includes(v.name));
  const out: PortConflict[] = [];
  const declared: { vm: VmSpec; p: VmSpec['ports'][number] }[] = [];
  for (const vm of project.vms) for (const p of vm.ports) if (p.hostPort !== null) declared.push({ vm, p });

  for (const vm of targets) {
    if (vm.runState === 'stopped') continue;
    const obs = observed.vms[vm.name];
    const running = obs && (obs.power === 'running' || obs.power === 'paused' || obs.power === 'unknown');
    const ownRecorded = new Set(running ? Object.values(obs.ports) : []);
    for (const p of vm.ports) {
      if (p.hostPort === null) continue;
      const base = { vm: vm.name, hostAddress: p.hostAddress, hostPort: p.hostPort, protocol: p.protocol, guestPort: p.guestPort };
      const what = `${vm.name}: host port ${p.hostAddress}:${p.hostPort}/${p.protocol} (for guest port ${p.guestPort})`;
      const other = declared.find(
        (d) =>
          d.vm.name !== vm.name &&
          d.p.protocol === p.protocol &&
          d.p.hostPort === p.hostPort &&
          addressesOverlap(d.p.hostAddress, p.hostAddress),
      );
      if (other) {
        out.push({
          ...base,
          otherVm: other.vm.name,
          message: `${what} is also declared by ${other.vm.name}: give one of them another host port`,
        });
        continue;
      }
      const holder = sockets.find((s) => {
        if (s.protocol !== p.protocol || s.port !== p.hostPort || !addressesOverlap(s.address, p.hostAddress)) return false;
        if (running && obs.pid !== null && s.pid === obs.pid) return false;
        if (running && s.pid === null && ownRecorded.has(`${p.hostAddress}:${p.hostPort}`)) return false;
        return true;
      });
      if (holder) {
        out.push({
          ...base,
          holder: { pid: holder.pid, command: holder.command, address: holder.address },
          message: `${what} is already taken by ${describeHolder(holder)}: stop it or choose another host port`,
        });
      }
    }
  }
  return out;
}
