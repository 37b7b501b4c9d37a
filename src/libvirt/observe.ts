/**
 * Observation of a project's libvirt domains: power from libvirt, what each VM was defined with
 * from the domain's <metadata>, the rest from the VM's folder as for QEMU (qemu/observe.ts).
 */
import { readFile } from 'node:fs/promises';
import type { Observed, ObservedVm } from '../../schemas/ports.js';
import { vmFile } from '../state/paths.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { observeVm, vmFolders } from '../qemu/observe.js';
import type { PortRecord } from '../qemu/ports.js';
import { readyRecorded } from '../qemu/readiness.js';
import { readBackendRecord } from '../backend/record.js';
import { readMetadata } from './metadata.js';
import { domainName, domainPrefix } from './names.js';
import { parseDomainList, type DomainRow } from './virsh.js';
import { abortIf, pdir, qemuPid, type LibvirtContext } from './context.js';
import { observedSaved } from './managed-save.js';

/** What marks a remote domain's run as ready: the URI and the domain id (new at each start). */
export function remoteBootId(uri: string, domid: number): string {
  return `${uri}#${domid}`;
}

/** libvirt's state words -> tend's power states. */
export function powerOf(state: string | undefined): ObservedVm['power'] {
  switch (state) {
    case 'running':
    case 'in shutdown':
    case 'idle':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case undefined:
    case 'shut off':
    case 'saved': // shut off with a managed save (`virsh list --managed-save`)
    case 'crashed':
      return 'stopped';
    default:
      return 'unknown';
  }
}

async function observeOne(
  ctx: LibvirtContext,
  project: Project,
  name: string,
  r: DomainRow | undefined,
  signal?: AbortSignal,
  prefetched?: Promise<string | null>,
): Promise<ObservedVm> {
  const pd = pdir(ctx, project);
  // the folder's part: disk, intent, provision record, corrupt files (no QEMU pidfile here)
  const base = await observeVm(pd, name, ctx.env);
  const dom = domainName(project, name);
  let applied: VmSpec | null = null;
  let diskImage: string | null = null;
  let ports: PortRecord = {};
  let accel: ObservedVm['accel'] = null;
  const corrupt = [...base.corrupt];
  const power = powerOf(r?.state);
  if (r) {
    const xml = await (prefetched ?? ctx.virsh.tryRun(['dumpxml', dom], { signal }));
    const m = xml === null ? null : readMetadata(xml);
    if (m?.ok) {
      applied = m.value.spec;
      diskImage = m.value.diskImage;
      if (power !== 'stopped') {
        ports = m.value.ports;
        accel = m.value.accel;
      }
    } else if (m) {
      corrupt.push(`libvirt domain ${dom} (${m.why})`);
    }
  }
  const alive = power !== 'stopped';
  const { pid, startedAt } = alive ? await qemuPid(ctx, dom, r?.id ?? null) : { pid: null, startedAt: null };
  const ssh = ports.ssh ? Number(ports.ssh.slice(ports.ssh.lastIndexOf(':') + 1)) : null;
  // readiness recorded for this very QEMU process (markReady), never for a pid number alone
  const ready = !alive
    ? false
    : ctx.local
      ? pid !== null && (await readyRecorded(pd, name, pid))
      : r?.id != null && (await readFile(vmFile(pd, name, 'ready'), 'utf8').catch(() => '')).trim() === remoteBootId(ctx.uri, r.id);
  return {
    ...base,
    ready,
    power,
    pid,
    applied,
    diskImage,
    accel,
    ports,
    sshPort: ssh !== null && Number.isInteger(ssh) ? ssh : null,
    startedAt,
    // libvirt's managed save (stop --save), never the QEMU backend's file of a VM that moved here
    saved: r?.state === 'saved' ? await observedSaved(ctx, pd, name, dom) : null,
    corrupt: [...new Set(corrupt)],
  };
}

/** Domain rows of this project on this connection, by VM name. */
async function projectDomains(ctx: LibvirtContext, project: Project, signal?: AbortSignal): Promise<Map<string, DomainRow>> {
  const prefix = domainPrefix(project);
  // --managed-save: a domain stopped with its state saved is listed as `saved` (no extra call)
  const rows = parseDomainList(await ctx.virsh.run(['list', '--all', '--managed-save'], { signal }));
  const out = new Map<string, DomainRow>();
  for (const r of rows) if (r.name.startsWith(prefix)) out.set(r.name.slice(prefix.length), r);
  return out;
}

export async function observe(ctx: LibvirtContext, project: Project, signal?: AbortSignal): Promise<Observed> {
  abortIf(signal);
  const pd = pdir(ctx, project);
  const listing = projectDomains(ctx, project, signal);
  const mine: string[] = [];
  for (const n of await vmFolders(pd)) {
    const rec = await readBackendRecord(pd, n);
    if (rec?.backend === 'libvirt' && rec.uri === ctx.uri) mine.push(n);
  }
  // the domains tend's folders name are read while `virsh list` runs: one virsh round trip less
  // on every observation (a converged `tend up`, each pass of `watch`)
  const xmls = new Map(mine.map((n) => [n, ctx.virsh.tryRun(['dumpxml', domainName(project, n)], { signal })]));
  // handled here when nothing awaits it (its domain is gone, or the listing failed first)
  for (const x of xmls.values()) x.catch(() => undefined);
  const domains = await listing;
  const names = [...new Set([...mine, ...domains.keys()])].sort();
  const list = await Promise.all(names.map((n) => observeOne(ctx, project, n, domains.get(n), signal, xmls.get(n))));
  const vms: Record<string, ObservedVm> = {};
  for (const o of list) vms[o.name] = o;
  return { vms };
}
