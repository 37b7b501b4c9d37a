/** READY as `ps` and `ls` show it: observed for the running process, never a saved belief. */
import { alive, type ObservedVm } from '../../schemas/ports.js';
import { readStatus, type StatusRecord } from '../state/status.js';

/**
 * READY and the recorded conditions of an observed VM. Ready only as observed: readiness recorded
 * for this very process, and no verdict since that says otherwise (a wait that failed, or was
 * killed); a verdict recorded before the running process started is about an earlier run.
 */
export async function observedReadiness(projDir: string, name: string, obs: ObservedVm): Promise<{ ready: boolean; conditions: string[] }> {
  const up = alive(obs.power);
  const recorded = up ? await readStatus(projDir, name) : undefined;
  const status: Partial<StatusRecord> | undefined = recorded && (recorded.at ?? 0) >= (obs.startedAt ?? Infinity) ? recorded : undefined;
  const observedReady = up && obs.power === 'running' && obs.ready === true;
  const conditions = (status?.conditions ?? []).filter((c) => observedReady || (c !== 'Ready' && c !== 'Healthy'));
  return { ready: observedReady && (status === undefined || status.state === 'Ready'), conditions };
}
