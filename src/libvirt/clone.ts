/**
 * Warm clones of libvirt domains (issue 15 §2, docs/warm.md). Prepare is the QEMU backend's
 * (src/qemu/clone.ts prepareClone: a new overlay on the template's frozen disk, `clone.json`).
 * The clone's first start restores the template's memory instead of `virsh start`: tend writes
 * a save image of libvirt's format (src/libvirt/save-image.ts) whose XML is the template's live
 * XML with the clone's name, UUID, metadata, files and port forwards (clone-xml.ts), followed by
 * the template's migration stream, and `virsh restore`s it into the clone's defined domain; the
 * image is removed once read. Then (after slirp's port forwards) the identity step is the QEMU
 * backend's (makeIdentityOwn). A clone whose template does not fit the domain just defined
 * (another QEMU, other hardware) gets a plain overlay and boots, with one line saying why.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import type { VmSpec } from '../../schemas/model.js';
import { TEMPLATE_FILES, templateDir, vmFile } from '../state/paths.js';
import { pendingClone } from '../qemu/clone.js';
import type { TemplateRecord } from '../qemu/templates.js';
import { xmlDifference } from './managed-save.js';
import { cloneSaveXml, portableDomainXml } from './clone-xml.js';
import { writeSaveImage } from './save-image.js';
import type { LibvirtContext } from './context.js';

/**
 * At start: the template to restore when the VM's disk is a libvirt clone not started yet and its
 * template fits the domain just defined as `xml` (same connection, same QEMU, same XML but for
 * per-clone values); else null (a clone that does not fit was made a plain disk).
 */
export async function libvirtCloneToRestore(
  ctx: LibvirtContext,
  pd: string,
  vm: VmSpec,
  xml: string,
  signal?: AbortSignal,
): Promise<TemplateRecord | null> {
  if (!ctx.local) return null;
  return pendingClone(ctx, pd, vm, async (t) => {
    if (!t.libvirt) return "its template is the QEMU backend's";
    if (t.libvirt.uri !== ctx.uri) return `its template is a domain of ${t.libvirt.uri}`;
    const hv = (await ctx.capabilities(signal)).hypervisor;
    if (hv !== t.qemuVersion) return `QEMU changed (template made with "${t.qemuVersion}", now "${hv ?? '?'}")`;
    const diff = xmlDifference(t.libvirt.portable, portableDomainXml(xml));
    if (diff) return `its settings differ from the template's (${diff})`;
    return null;
  });
}

/** `virsh restore` of the clone's own save image: the defined domain `dom` runs the template's memory. */
export async function restoreClone(
  ctx: LibvirtContext,
  pd: string,
  vm: VmSpec,
  dom: string,
  xml: string,
  t: TemplateRecord,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  if (!t.libvirt) throw new Error("its template is the QEMU backend's");
  // the defined domain's UUID: libvirt restores into the domain of that name and UUID
  const uuid = (await ctx.virsh.run(['domuuid', dom], { signal })).trim();
  const image = vmFile(pd, vm.name, 'cloneImage');
  try {
    await writeSaveImage(image, cloneSaveXml(t.libvirt.xml, xml, uuid), join(templateDir(ctx.stateRoot, t.key), TEMPLATE_FILES.state));
    await ctx.virsh.run(['restore', image], { signal, timeoutMs });
  } finally {
    await rm(image, { force: true });
  }
}
