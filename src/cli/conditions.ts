/** The conditions `ps` and `status` show that come from the plan and the observation (not the status record). */
import type { PlanEntry } from '../../controllers/plan.js';
import type { ObservedVm } from '../../schemas/ports.js';

export function planConditions(e: PlanEntry | undefined, obs: ObservedVm | undefined): string[] {
  const out: string[] = [];
  if (e?.action === 'recreate-required') out.push('RecreateRequired');
  if (e?.action === 'orphan') out.push('Orphan');
  if (e && ['restart', 'reseed', 'recreate', 'create', 'start'].includes(e.action) && obs?.exists) out.push('OutOfSync');
  if (obs?.intent === 'stopped') out.push('StopIntent');
  if (obs && obs.corrupt.length > 0) out.push('StateRebuilt');
  return out;
}
