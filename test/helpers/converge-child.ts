/**
 * A `tend converge` in its own process, with the real QEMU backend (the fake qemu-system on
 * PATH) and a guest that is ready at once: the integration tests SIGKILL it at any point and
 * check that the next converge finishes the job. Usage: converge-child.ts PROJECT_DIR STATE_DIR
 */
import { convergeCommand } from '../../src/cli/commands/converge.js';
import type { Guest } from '../../schemas/ports.js';

const guest: Guest = {
  waitReady: async () => undefined,
  provision: async () => undefined,
  provisionPending: async () => false,
};
const [cwd, stateDir] = process.argv.slice(2);
const r = await convergeCommand({ cwd, stateDir, guest, wait: true, lockTimeout: '30s' });
process.stdout.write(JSON.stringify({ ok: r.ok }) + '\n');
