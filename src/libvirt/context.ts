/**
 * What the libvirt backend's operations share: its options, resolved once (connection, virsh,
 * the QEMU backend that prepares the files), and the domain reads they all make.
 */
import { stat } from 'node:fs/promises';
import type { Clock, FullBackend } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import type { Logger } from '../log.js';
import { projectDir } from '../state/paths.js';
import { readPidfile } from '../qemu/liveness.js';
import { pidAlive } from '../pid.js';
import type { StageTimeouts } from '../timeouts.js';
import { readMetadata, type TendMetadata } from './metadata.js';
import type { DomainRow, Virsh } from './virsh.js';
import { domainPidfile } from './connect.js';
import type { LibvirtCapabilities } from './capabilities.js';

export interface LibvirtContext {
  stateRoot: string;
  uri: string;
  /** the URI is on this host (connect.ts: isLocalUri) */
  local: boolean;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  log: Logger | undefined;
  virsh: Virsh;
  /** the QEMU backend over the same state folder: disks, seed and keys */
  files: FullBackend;
  timeouts: StageTimeouts | undefined;
  termGraceMs: number | undefined;
  /** a remote host's pool directory (pool.ts: ensurePool), once per backend */
  poolDir: (signal?: AbortSignal) => Promise<string>;
  /** probed once per backend (capabilities.ts) */
  capabilities: (signal?: AbortSignal) => Promise<LibvirtCapabilities>;
}

export const ACTIVE = new Set(['running', 'paused', 'in shutdown', 'idle', 'pmsuspended', 'dying']);

export function abortIf(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

export function pdir(ctx: LibvirtContext, p: Project): string {
  return projectDir(ctx.stateRoot, p.name, p.dir);
}

export async function row(ctx: LibvirtContext, dom: string, signal?: AbortSignal): Promise<DomainRow | null> {
  const out = await ctx.virsh.tryRun(['domstate', dom], { signal });
  if (out === null) return null;
  return { name: dom, state: out.split('\n')[0].trim(), id: null };
}

export async function metadataOf(ctx: LibvirtContext, dom: string, inactive: boolean, signal?: AbortSignal): Promise<TendMetadata | null> {
  const xml = await ctx.virsh.tryRun(['dumpxml', ...(inactive ? ['--inactive'] : []), dom], { signal });
  if (xml === null) return null;
  const m = readMetadata(xml);
  return m.ok ? m.value : null;
}

export async function qemuPid(
  ctx: LibvirtContext,
  dom: string,
  fallbackId: number | null,
): Promise<{ pid: number | null; startedAt: number | null }> {
  const pidfile = domainPidfile(ctx.uri, dom, ctx.env);
  if (!pidfile) return { pid: fallbackId, startedAt: null };
  const pid = await readPidfile(pidfile);
  if (pid === null || !pidAlive(pid)) return { pid: null, startedAt: null };
  const st = await stat(pidfile).catch(() => null);
  return { pid, startedAt: st ? st.mtimeMs : null };
}
