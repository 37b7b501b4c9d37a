/**
 * Stop with memory saved on libvirt (issue 15 §1, docs/warm.md): `virsh managedsave` writes the
 * domain's RAM and device state into libvirt's own file (qemu:///system:
 * /var/lib/libvirt/qemu/save/<domain>.save) and QEMU exits; the next `virsh start` restores it.
 *
 * libvirt restores a managed save with the domain XML stored in it, whatever the domain was
 * defined with since (a memory edit would silently come back with the old memory), and it cannot
 * know whether the disk was written meanwhile. So tend decides before each start, as for QEMU
 * (src/qemu/saved-state.ts): a state is restored only when tend saved it (`libvirt-saved.json` in
 * the VM's folder) and
 *  - the domain XML tend defines now is the one it was saved from (without tend's <metadata> and
 *    passt's host port forwards: which host port reaches the guest is not guest state),
 *  - every writable disk (overlay, named volumes, UEFI variables) is untouched since the save
 *    (inode, size, mtime), the seed has the same bytes, and libvirt's state file is the one saved;
 * otherwise `virsh managedsave-remove` discards it with one line saying why, and the VM boots with
 * its disk kept.
 */
import { rm } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { create } from 'xmlbuilder2';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import type { SavedState, StopOptions, StopResult } from '../../schemas/ports.js';
import { BackendError, UsageError } from '../../schemas/errors.js';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { validateLibvirtSavedRecord } from '../state/validators.generated.js';
import { vmFile } from '../state/paths.js';
import { readyRecorded } from '../qemu/readiness.js';
import { writableDisks } from '../qemu/save.js';
import { argvDifference, disksChanged, identify, seedDigest, type FileId } from '../qemu/saved-state.js';
import { managedSavePath } from './connect.js';
import { domainName } from './names.js';
import { abortIf, ACTIVE, metadataOf, pdir, qemuPid, row, type LibvirtContext } from './context.js';
import { stop } from './lifecycle.js';

/** libvirt-saved.json: what a managed save made by tend belongs to. */
export interface LibvirtSavedRecord {
  /** when the state was written (ms since epoch) */
  savedAt: number;
  domain: string;
  /** the domain XML tend defined for the saved run, without what is not guest state (hardwareXml) */
  xml: string;
  /** writable disk path → its identity after QEMU exited */
  disks: Record<string, FileId>;
  /** sha256 of the seed ISO, null when the VM has none */
  seed: string | null;
  /** libvirt's state file as it was after the save; null when not readable here */
  stateFile: FileId | null;
}

const recordPath = (pd: string, vm: string): string => vmFile(pd, vm, 'libvirtSaved');

async function readRecord(ctx: LibvirtContext, pd: string, vm: string): Promise<LibvirtSavedRecord | undefined> {
  return readJson<LibvirtSavedRecord>(recordPath(pd, vm), validateLibvirtSavedRecord, (c) =>
    ctx.log?.warn({ vm }, `${c.path} is damaged (${c.error}): a state it describes is not restored`),
  );
}

/**
 * tend's domain XML without what may change while the guest's state stays valid: its <metadata>
 * (the spec's live fields, host ports) and passt's <portForward>s (host ports). One element per
 * line, so a difference reads as `<memory unit="MiB">512</memory> → <memory unit="MiB">640</memory>`.
 */
export function hardwareXml(xml: string): string {
  const doc = create(xml);
  const root = doc.root().node as unknown as Element;
  const drop: Element[] = [];
  for (const c of [...root.children]) {
    if (c.nodeName === 'metadata') drop.push(c);
    if (c.nodeName === 'devices')
      for (const d of [...c.children])
        if (d.nodeName === 'interface') for (const x of [...d.children]) if (x.nodeName === 'portForward') drop.push(x);
  }
  for (const e of drop) e.parentNode?.removeChild(e);
  return doc.end({ prettyPrint: true, headless: true });
}

const lines = (xml: string): string[] =>
  xml
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

/**
 * What differs between two domain XMLs, line by line (as argvDifference words it), or null.
 * Where tend places a device on the PCI bus (domain-xml.ts SLOT) is no setting of the VM: a saved
 * state or a template restores with the addresses saved in it (libvirt's own copy of the XML),
 * so a state saved before tend placed devices stays valid. A passed-through device's host address
 * (<source><address domain=...>, no type) is a setting and is compared.
 */
export const xmlDifference = (before: string, after: string): ReturnType<typeof argvDifference> =>
  argvDifference(lines(before).filter(notPlacement), lines(after).filter(notPlacement));

const notPlacement = (line: string): boolean => !/^<address type="pci" /.test(line);

/**
 * `stop` with `save`: a VM observed Ready in this boot is saved with `virsh managedsave`; any other
 * is powered off as usual, with a line saying so (a guest saved mid-boot may come back without
 * SSH). A save libvirt refuses (a device that cannot migrate: virtiofs host folders, PCI
 * passthrough) leaves the VM running and says why.
 */
export async function saveOrStop(
  ctx: LibvirtContext,
  project: Project,
  name: string,
  o: StopOptions,
  signal?: AbortSignal,
): Promise<StopResult> {
  abortIf(signal);
  if (!ctx.local)
    throw new UsageError(
      `${name}: stop --save is not supported on a remote libvirt host yet (tend cannot check there that the disk is unchanged at the next start): stop it without --save (or remove \`stop: save\`)`,
      'SaveUnsupported',
    );
  const dom = domainName(project, name);
  const r = await row(ctx, dom, signal);
  if (!r || !ACTIVE.has(r.state)) return { saved: false };
  const pd = pdir(ctx, project);
  const { pid } = await qemuPid(ctx, dom, null);
  if (pid === null || !(await readyRecorded(pd, name, pid))) {
    ctx.log?.warn(
      { vm: name },
      'not saved: it was not observed Ready in this boot (a guest saved mid-boot may not come back); powering off instead',
    );
    await stop(ctx, project, name, o, signal);
    return { saved: false };
  }
  const m = await metadataOf(ctx, dom, false, signal);
  const xml = await readFile(vmFile(pd, name, 'domainXml'), 'utf8').catch(() => null);
  if (!m || xml === null)
    throw new BackendError('SaveFailed', `${name}: cannot save its state: tend has no record of how its domain was defined`);
  // an older record never describes the state about to be written
  await rm(recordPath(pd, name), { force: true });
  const t0 = ctx.clock.now();
  try {
    await ctx.virsh.run(['managedsave', dom], { signal, timeoutMs: 600_000 });
  } catch (err) {
    if (signal?.aborted) throw err;
    // libvirt resumes the guest when its save fails
    const running = ACTIVE.has((await row(ctx, dom).catch(() => null))?.state ?? '');
    throw new BackendError(
      'SaveFailed',
      `${name}: libvirt could not save its state (${(err as Error).message})${running ? '; the VM keeps running' : ''}`,
      { cause: err },
    );
  }
  const disks: Record<string, FileId> = {};
  for (const d of writableDisks(pd, m.spec)) {
    const id = await identify(d);
    if (id) disks[d] = id;
  }
  const file = managedSavePath(ctx.uri, dom, ctx.env);
  const stateFile = file ? await identify(file) : null;
  await writeJsonAtomic(recordPath(pd, name), {
    savedAt: ctx.clock.now(),
    domain: dom,
    xml: hardwareXml(xml),
    disks,
    seed: await seedDigest(m.spec.cloudInit !== null ? vmFile(pd, name, 'seed') : null),
    stateFile,
  } satisfies LibvirtSavedRecord);
  ctx.log?.info(
    { vm: name },
    `state saved (${stateFile ? `${Math.round(stateFile.size / 1048576)} MiB ` : ''}in ${((ctx.clock.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return { saved: true };
}

/** The domain has a managed save (its state reason is `saved`). */
async function hasManagedSave(ctx: LibvirtContext, dom: string, signal?: AbortSignal): Promise<boolean> {
  const st = await ctx.virsh.tryRun(['domstate', '--reason', dom], { signal });
  return st !== null && /\(saved\)/.test(st);
}

/** Remove the domain's managed save and tend's record of it. */
export async function discardManagedSave(ctx: LibvirtContext, pd: string, vm: string, dom: string, signal?: AbortSignal): Promise<void> {
  // the record first: a state without a record is never restored
  await rm(recordPath(pd, vm), { force: true });
  if (await hasManagedSave(ctx, dom, signal)) await ctx.virsh.run(['managedsave-remove', dom], { signal });
}

/** tend's record of a state was used: the next start boots unless a new save is made. */
export async function consumeManagedSave(pd: string, vm: string): Promise<void> {
  await rm(recordPath(pd, vm), { force: true });
}

/** Why the saved state cannot be restored into the domain defined as `xml`, or null when it can. */
async function invalidReason(
  ctx: LibvirtContext,
  rec: LibvirtSavedRecord,
  pd: string,
  vm: VmSpec,
  dom: string,
  xml: string,
): Promise<string | null> {
  if (rec.domain !== dom) return `it was saved for domain ${rec.domain}`;
  const file = managedSavePath(ctx.uri, dom, ctx.env);
  if (file && rec.stateFile) {
    const id = await identify(file);
    if (!id) return 'libvirt has no state file for it';
    if (id.ino !== rec.stateFile.ino || id.size !== rec.stateFile.size || id.mtimeMs !== rec.stateFile.mtimeMs)
      return "libvirt's state file is not the one tend saved";
  }
  const change = xmlDifference(rec.xml, hardwareXml(xml));
  if (change) return `the VM's settings changed (${change})`;
  return disksChanged(
    rec.disks,
    writableDisks(pd, vm),
    rec.seed,
    await seedDigest(vm.cloudInit !== null ? vmFile(pd, vm.name, 'seed') : null),
  );
}

/**
 * Whether the `virsh start` about to run restores a managed save valid for the domain just defined
 * as `xml`. One that is not valid, or that tend did not make (no record of its disks: libvirt-guests,
 * a `virsh managedsave` by hand), is removed first, with one line saying why.
 */
export async function managedSaveToRestore(
  ctx: LibvirtContext,
  pd: string,
  vm: VmSpec,
  dom: string,
  xml: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const rec = await readRecord(ctx, pd, vm.name);
  if (!(await hasManagedSave(ctx, dom, signal))) {
    if (rec) await consumeManagedSave(pd, vm.name);
    return false;
  }
  const why = rec
    ? await invalidReason(ctx, rec, pd, vm, dom, xml)
    : 'tend has no record of the disks it belongs to (it was not saved by tend stop --save)';
  if (why === null) return true;
  ctx.log?.warn({ vm: vm.name }, `saved state discarded: ${why}; booting with its disk kept`);
  await discardManagedSave(ctx, pd, vm.name, dom, signal);
  return false;
}

/** The managed save of a domain listed as `saved`, as observed: its size and when it was written. */
export async function observedSaved(ctx: LibvirtContext, pd: string, vm: string, dom: string): Promise<SavedState> {
  const rec = await readJson<LibvirtSavedRecord>(recordPath(pd, vm), validateLibvirtSavedRecord);
  const file = managedSavePath(ctx.uri, dom, ctx.env);
  const id = file ? await identify(file) : null;
  // libvirt's file when it can be read here; a remote host's size is not known (null)
  return { bytes: id?.size ?? null, savedAt: rec?.savedAt ?? id?.mtimeMs ?? null };
}
