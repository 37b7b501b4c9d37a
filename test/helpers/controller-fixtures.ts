/** Small builders shared by the controller tests. */
import { applyDefaults } from '../../schemas/defaults.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { TendEvent } from '../../schemas/ports.js';

export function spec(name: string, over: Partial<VmSpec> = {}): VmSpec {
  return { ...applyDefaults({ name, image: { kind: 'catalog', ref: 'debian:12' } }), ...over };
}

export function project(vms: VmSpec[], volumes: Project['volumes'] = {}): Project {
  return { name: 'p', dir: '/p', files: ['/p/tend.yaml'], vms, volumes };
}

/** Wait (without sleeping) until `cond` holds: yields to the event loop up to `turns` times. */
export async function until(cond: () => boolean, what = 'condition', turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function collector(): { events: TendEvent[]; onEvent: (e: TendEvent) => void; reasons: (vm?: string) => string[] } {
  const events: TendEvent[] = [];
  return {
    events,
    onEvent: (e) => events.push(e),
    reasons: (vm) => events.filter((e) => vm === undefined || e.vm === vm).map((e) => e.reason),
  };
}
