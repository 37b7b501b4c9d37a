/**
 * What the QEMU backend's operations share: its options, resolved once, and the state reads they
 * all make (the applied record, the VM's live QEMU).
 */
import type { Clock } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import type { Logger } from '../log.js';
import { readJson, writeFileAtomic } from '../state/atomic.js';
import { FILES, projectDir, vmFile } from '../state/paths.js';
import type { StageTimeouts } from '../timeouts.js';
import { findQemu } from './liveness.js';
import { validateApplied, type AppliedRecord } from './observe.js';

export interface QemuContext {
  stateRoot: string;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  binary: string;
  log: Logger | undefined;
  timeouts: StageTimeouts | undefined;
  termGraceMs: number | undefined;
  acpiPatienceMs: number | undefined;
  /** the VM runs on another host (remote libvirt): its named volumes and UEFI variables are made there, not here */
  runsElsewhere: boolean;
  /** what runs the VMs when not this backend (`libvirt URI`): part of a warm template's key (template-key.ts) */
  templateScope: string | null;
}

export function abortIf(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

export function pdir(ctx: QemuContext, p: Project): string {
  return projectDir(ctx.stateRoot, p.name, p.dir);
}

export function file(ctx: QemuContext, p: Project, vm: string, k: keyof typeof FILES): string {
  return vmFile(pdir(ctx, p), vm, k);
}

export function corruptNote(ctx: QemuContext): (c: { path: string; error: string }) => void {
  return (c) => {
    ctx.log?.warn(`ignored a damaged state file ${c.path} (${c.error}); it is rebuilt from observation`);
  };
}

export async function readApplied(ctx: QemuContext, p: Project, vm: string): Promise<AppliedRecord | undefined> {
  return readJson<AppliedRecord>(file(ctx, p, vm, 'applied'), validateApplied, corruptNote(ctx));
}

/** The VM's QEMU (by pidfile, else by a /proc scan); a pidfile that did not lead to it is written again. */
export async function liveQemu(ctx: QemuContext, pidfile: string, vm: string): Promise<{ pid: number; argv: string[] } | null> {
  const live = await findQemu(pidfile);
  if (live?.found === 'scan') {
    ctx.log?.warn({ vm }, `found its QEMU (pid ${live.pid}) by its command line: the pidfile ${pidfile} was damaged; written again`);
    await writeFileAtomic(pidfile, `${live.pid}\n`);
  }
  return live;
}
