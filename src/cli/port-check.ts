/**
 * The one call `tend plan` and `tend converge` make before acting: observe the host's sockets
 * and fail with every host port conflict (controllers/port-conflicts.ts decides; this gathers
 * the observation and turns conflicts into an error).
 */
import { portConflicts, type PortConflict } from '../../controllers/port-conflicts.js';
import type { Observed } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import { EXIT, TendError } from '../../schemas/errors.js';
import { hostPortsInUse, type HostPortUse } from '../net/port-holders.js';

export class PortConflictError extends TendError {
  readonly conflicts: PortConflict[];
  constructor(conflicts: PortConflict[]) {
    super(
      'HostPortInUse',
      conflicts.length === 1
        ? conflicts[0].message
        : `${conflicts.length} host port conflicts:\n${conflicts.map((c) => `  ${c.message}`).join('\n')}`,
      EXIT.failure,
    );
    this.conflicts = conflicts;
  }
}

/** Throws PortConflictError when a fixed host port of a targeted VM is taken. */
export async function checkHostPorts(
  project: Project,
  observed: Observed,
  opts: { names?: readonly string[]; sockets?: readonly HostPortUse[] } = {},
): Promise<void> {
  if (!project.vms.some((v) => v.ports.some((p) => p.hostPort !== null))) return;
  const sockets = opts.sockets ?? (await hostPortsInUse());
  const conflicts = portConflicts(project, observed, sockets, opts.names);
  if (conflicts.length > 0) throw new PortConflictError(conflicts);
}
