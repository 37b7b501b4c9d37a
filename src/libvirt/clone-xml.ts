/**
 * The domain XML of a libvirt warm clone (src/libvirt/clone.ts), as pure functions:
 *  - `portableDomainXml`: tend's domain XML with what legitimately differs per clone masked (the
 *    domain's name, UUID and title, tend's <metadata>, its files: disk and seed sources, the
 *    NVRAM file, the serial socket and console log; passt's host port forwards), one element per
 *    line: a template's and a clone's must be equal for the template's memory to be restored
 *    into the clone (as portableArgv on the QEMU backend).
 *  - `cloneSaveXml`: the XML a clone's save image carries (src/libvirt/save-image.ts): the
 *    template's live migratable XML (what its QEMU ran with: the same devices, addresses and
 *    aliases) with the clone's name, UUID, title, metadata, files and port forwards.
 */
import { create } from 'xmlbuilder2';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import { hardwareXml } from './managed-save.js';

const kids = (e: Element | undefined, name?: string): Element[] =>
  e ? ([...e.children] as Element[]).filter((c) => name === undefined || c.nodeName === name) : [];
const kid = (e: Element | undefined, name: string): Element | undefined => kids(e, name)[0];

function rootOf(xml: string): { doc: ReturnType<typeof create>; root: Element } {
  const doc = create(xml);
  return { doc, root: doc.root().node as unknown as Element };
}

/** Per-clone values of a domain XML: the elements and attributes portableDomainXml masks and cloneSaveXml transplants. */
function perClone(root: Element): { el: Element; attr: string | null }[] {
  const out: { el: Element; attr: string | null }[] = [];
  for (const n of ['name', 'title']) for (const e of kids(root, n)) out.push({ el: e, attr: null });
  for (const e of kids(kid(root, 'os'), 'nvram')) out.push({ el: e, attr: null });
  const devices = kid(root, 'devices');
  for (const d of kids(devices, 'disk')) for (const s of kids(d, 'source')) out.push({ el: s, attr: 'file' });
  for (const d of [...kids(devices, 'serial'), ...kids(devices, 'console')]) {
    for (const s of kids(d, 'source')) out.push({ el: s, attr: 'path' });
    for (const s of kids(d, 'log')) out.push({ el: s, attr: 'file' });
  }
  return out;
}

/** tend's domain XML (as defined) with the per-clone values masked, one element per line. */
export function portableDomainXml(xml: string): string {
  const { doc, root } = rootOf(hardwareXml(xml));
  // the UUID: a domain defined for the first time has none in tend's XML, later ones libvirt's
  for (const e of kids(root, 'uuid')) root.removeChild(e);
  for (const { el, attr } of perClone(root)) {
    if (attr === null) el.textContent = '*';
    else if (el.hasAttribute(attr)) el.setAttribute(attr, '*');
  }
  return doc.end({ prettyPrint: true, headless: true });
}

/** The disk of `devices` whose target is `dev`. */
function diskByTarget(devices: Element | undefined, dev: string | null): Element | undefined {
  return kids(devices, 'disk').find((d) => kid(d, 'target')?.getAttribute('dev') === dev);
}

/**
 * The XML of a clone's save image: `templateLive` (the template's `virsh dumpxml --migratable`
 * taken at capture) with the clone's name, `uuid`, title and <metadata>, its disk sources (by
 * target dev), NVRAM file, serial socket and console log, and its user NIC's <portForward>s,
 * taken from `cloneDefined` (the XML tend just defined for the clone). A disk's <backingStore>
 * is dropped: the clone's overlay has another chain (clone → template's frozen disk → base
 * image), which libvirt then reads from the files. Throws when the two differ in a disk target.
 */
export function cloneSaveXml(templateLive: string, cloneDefined: string, uuid: string): string {
  const { doc, root } = rootOf(templateLive);
  const clone = rootOf(cloneDefined).root;
  const owner = root.ownerDocument!;
  const setText = (name: string, value: string | null | undefined): void => {
    let e = kid(root, name);
    if (value === null || value === undefined) {
      if (e) root.removeChild(e);
      return;
    }
    if (!e) {
      e = owner.createElement(name);
      root.insertBefore(e, kid(root, 'uuid')?.nextSibling ?? root.firstChild);
    }
    e.textContent = value;
  };
  setText('name', kid(clone, 'name')?.textContent);
  setText('uuid', uuid);
  setText('title', kid(clone, 'title')?.textContent ?? null);
  // tend's <metadata>: the clone's spec, ports and project
  const meta = kid(root, 'metadata');
  const cloneMeta = kid(clone, 'metadata');
  if (meta) root.removeChild(meta);
  if (cloneMeta) root.insertBefore(owner.importNode(cloneMeta, true), kid(root, 'memory') ?? null);

  const nvram = kid(kid(root, 'os'), 'nvram');
  const cloneNvram = kid(kid(clone, 'os'), 'nvram');
  if (nvram && cloneNvram) nvram.textContent = cloneNvram.textContent;

  const devices = kid(root, 'devices');
  const cloneDevices = kid(clone, 'devices');
  for (const d of kids(devices, 'disk')) {
    const dev = kid(d, 'target')?.getAttribute('dev') ?? null;
    const mine = diskByTarget(cloneDevices, dev);
    const file = mine ? kid(mine, 'source')?.getAttribute('file') : null;
    if (!file) throw new Error(`the template's disk ${dev ?? '?'} has no counterpart in the clone's domain`);
    kid(d, 'source')?.setAttribute('file', file);
    for (const b of kids(d, 'backingStore')) d.removeChild(b);
  }
  const serial = kid(cloneDevices, 'serial');
  for (const d of [...kids(devices, 'serial'), ...kids(devices, 'console')]) {
    const path = kid(serial, 'source')?.getAttribute('path');
    const log = kid(serial, 'log')?.getAttribute('file');
    if (path) kid(d, 'source')?.setAttribute('path', path);
    if (log) kid(d, 'log')?.setAttribute('file', log);
  }
  // passt's host port forwards are the clone's own
  const nic = kids(devices, 'interface').find((i) => i.getAttribute('type') === 'user');
  const cloneNic = kids(cloneDevices, 'interface').find((i) => i.getAttribute('type') === 'user');
  if (nic) {
    for (const p of kids(nic, 'portForward')) nic.removeChild(p);
    for (const p of kids(cloneNic, 'portForward')) nic.appendChild(owner.importNode(p, true));
  }
  return doc.end({ prettyPrint: true, headless: true });
}
