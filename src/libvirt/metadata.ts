/**
 * tend's record inside a libvirt domain: `<metadata><tend:vm xmlns:tend="...">`. It holds the
 * spec the domain was defined with (what `plan` diffs against), the digest of that spec, the
 * image the VM's disk was created from, and the host ports of user networking. Observation reads
 * it from the domain's own XML (`virsh dumpxml`), so no side file can disagree with the domain.
 */
import { createHash } from 'node:crypto';
import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import type { VmSpec } from '../../schemas/model.js';

export const TEND_NS = 'https://tend.dev/schemas/libvirt/1';

export interface TendMetadata {
  /** project name and directory (the domain name carries a hash of the directory) */
  project: string;
  projectDir: string;
  vm: string;
  /** the spec the domain was defined with */
  spec: VmSpec;
  /** the image (resolved id) the disk was created from, null when unknown */
  diskImage: string | null;
  /** host ports: guest "port/proto" -> "addr:port", SSH under "ssh" */
  ports: Record<string, string>;
  accel: 'kvm' | 'tcg';
}

/** sha256 of the spec's canonical JSON (keys sorted): equal specs, equal digests. */
export function specDigest(spec: VmSpec): string {
  return `sha256:${createHash('sha256').update(canonicalJson(spec)).digest('hex')}`;
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Append `<tend:vm>` to a <metadata> element. */
export function metadataElement(parent: XMLBuilder, m: TendMetadata): void {
  const el = parent.ele(TEND_NS, 'tend:vm', { project: m.project, vm: m.vm, accel: m.accel });
  el.ele(TEND_NS, 'tend:project-dir').txt(m.projectDir);
  el.ele(TEND_NS, 'tend:digest').txt(specDigest(m.spec));
  if (m.diskImage !== null) el.ele(TEND_NS, 'tend:disk-image').txt(m.diskImage);
  el.ele(TEND_NS, 'tend:ports').txt(JSON.stringify(m.ports));
  el.ele(TEND_NS, 'tend:spec').txt(JSON.stringify(m.spec));
}

/**
 * The same record for `virsh metadata --set` (key "tend"): libvirt puts the root element into
 * tend's namespace itself and refuses XML that declares one, so nothing here is prefixed.
 */
export function metadataForVirsh(m: TendMetadata): string {
  const el = create().ele('vm', { project: m.project, vm: m.vm, accel: m.accel });
  el.ele('project-dir').txt(m.projectDir);
  el.ele('digest').txt(specDigest(m.spec));
  if (m.diskImage !== null) el.ele('disk-image').txt(m.diskImage);
  el.ele('ports').txt(JSON.stringify(m.ports));
  el.ele('spec').txt(JSON.stringify(m.spec));
  return el.toString();
}

export type ReadMetadata = { ok: true; value: TendMetadata } | { ok: false; why: string };

function childText(el: Element, local: string): string | null {
  for (const c of [...el.childNodes]) {
    // children are in tend's namespace when tend defined the domain, in none after `virsh metadata --set`
    if (c.nodeType === 1 && (c as Element).localName === local) return c.textContent ?? '';
  }
  return null;
}

/**
 * tend's metadata from a domain's XML. `ok: false` when the domain has none (not tend's) or it
 * is damaged (the spec does not match its digest, bad JSON): observation then reports the
 * domain's record as corrupt, never guesses.
 */
/**
 * The `<metadata>` element alone, when the domain XML has exactly one: parsing a few hundred bytes
 * instead of the whole domain keeps a converged `tend up` fast (observation reads every domain).
 */
function metadataOnly(domainXml: string): string | null {
  const i = domainXml.indexOf('<metadata>');
  const j = domainXml.indexOf('</metadata>');
  if (i < 0 || j < i || domainXml.indexOf('<metadata>', i + 1) >= 0) return null;
  return domainXml.slice(i, j + '</metadata>'.length);
}

const tendVm = (metadata: Element | undefined): Element | undefined =>
  metadata
    ? ([...metadata.childNodes].find(
        (n) => n.nodeType === 1 && (n as Element).namespaceURI === TEND_NS && (n as Element).localName === 'vm',
      ) as Element | undefined)
    : undefined;

export function readMetadata(domainXml: string): ReadMetadata {
  let vm: Element | undefined;
  const only = metadataOnly(domainXml);
  try {
    if (only !== null) vm = tendVm(create(only).root().node as Element);
  } catch {
    // e.g. a prefix declared outside <metadata>: read the whole domain below
  }
  if (!vm) {
    let doc: XMLBuilder;
    try {
      doc = create(domainXml);
    } catch (err) {
      return { ok: false, why: `domain XML does not parse: ${(err as Error).message}` };
    }
    const domain = doc.root().node as Element;
    vm = tendVm([...domain.childNodes].find((n) => n.nodeType === 1 && n.nodeName === 'metadata') as Element | undefined);
  }
  if (!vm) return { ok: false, why: 'no tend metadata' };
  try {
    const spec = JSON.parse(childText(vm, 'spec') ?? 'null') as VmSpec | null;
    if (!spec || typeof spec !== 'object' || typeof spec.name !== 'string') return { ok: false, why: 'no spec in tend metadata' };
    const digest = childText(vm, 'digest');
    if (digest !== specDigest(spec)) return { ok: false, why: 'spec does not match its digest' };
    const ports = JSON.parse(childText(vm, 'ports') ?? '{}') as Record<string, string>;
    const accel = vm.getAttribute('accel') === 'kvm' ? 'kvm' : 'tcg';
    return {
      ok: true,
      value: {
        project: vm.getAttribute('project') ?? '',
        projectDir: childText(vm, 'project-dir') ?? '',
        vm: vm.getAttribute('vm') ?? spec.name,
        spec,
        diskImage: childText(vm, 'disk-image'),
        ports: ports && typeof ports === 'object' ? ports : {},
        accel,
      },
    };
  } catch (err) {
    return { ok: false, why: `tend metadata is damaged: ${(err as Error).message}` };
  }
}
