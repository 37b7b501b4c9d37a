/**
 * The QEMU backend in its own process, so a test can SIGKILL "tend" at a chosen point and check
 * what the next command finds. Usage: backend-child.ts SETUP.json, where SETUP.json holds
 * { stateRoot, project } (a canonical Project); it prepares and starts the project's first VM and
 * prints {"pid": N}. The environment (PATH with the fake qemu, TEND_VIRTIOFSD, ...) is inherited.
 */
import { readFileSync } from 'node:fs';
import type { Project } from '../../schemas/model.js';
import { createQemuBackend } from '../../src/qemu/backend.js';

const setup = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as { stateRoot: string; project: Project };
const backend = createQemuBackend({ stateRoot: setup.stateRoot });
const vm = setup.project.vms[0];
if (!vm) throw new Error('no VM');
await backend.prepare(setup.project, vm, { recreateDisk: false });
const r = await backend.start(setup.project, vm);
process.stdout.write(JSON.stringify({ pid: r.pid }) + '\n');
