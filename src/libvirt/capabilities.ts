/**
 * What the libvirt on a connection can do, asked of libvirt itself: its daemon's version, the
 * hypervisor's version, and whether user-mode NICs may use passt (`<backend type='passt'/>` with
 * `<portForward>`). libvirt >= 9.2 accepts passt (9.0, Debian 12's, rejects the element); newer
 * libvirt lists it in domcapabilities (`<enum name='backendType'>`), which wins when present. On
 * this host the passt binary must be installed too.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Virsh } from './virsh.js';
import { isLocalUri } from './connect.js';

export interface LibvirtCapabilities {
  /** the daemon's libvirt version, e.g. "9.0.0" */
  daemonVersion: string | null;
  /** e.g. "QEMU 7.2.22" */
  hypervisor: string | null;
  /** user-mode NICs use passt (port forwards in the domain XML) */
  passt: boolean;
  /** why passt is or is not used */
  passtWhy: string;
}

export function versionAtLeast(v: string | null, want: [number, number, number]): boolean {
  if (!v) return false;
  const p = v.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) {
    if ((p[i] ?? 0) !== want[i]) return (p[i] ?? 0) > want[i];
  }
  return true;
}

export function onPath(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const d of (env.PATH ?? '').split(delimiter)) if (d && existsSync(join(d, name))) return join(d, name);
  return null;
}

/** Parse `virsh version --daemon`. */
export function parseVersion(text: string): { daemon: string | null; hypervisor: string | null } {
  const daemon = /Running against daemon:\s*(\S+)/.exec(text)?.[1] ?? /Using library:\s*libvirt\s+(\S+)/.exec(text)?.[1] ?? null;
  const hypervisor = /Running hypervisor:\s*(.+)/.exec(text)?.[1]?.trim() ?? null;
  return { daemon, hypervisor };
}

/** passt support from domcapabilities: true/false when libvirt says, null when it does not list backends. */
export function passtFromDomcaps(xml: string): boolean | null {
  const m = /<enum name=['"]backendType['"]>([\s\S]*?)<\/enum>/.exec(xml);
  if (!m) return null;
  return /<value>passt<\/value>/.test(m[1]);
}

export async function probeCapabilities(
  virsh: Virsh,
  o: { signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {},
): Promise<LibvirtCapabilities> {
  const v = parseVersion(await virsh.run(['version', '--daemon'], o.signal ? { signal: o.signal } : {}));
  const domcaps = (await virsh.tryRun(['domcapabilities'], o.signal ? { signal: o.signal } : {})) ?? '';
  const listed = passtFromDomcaps(domcaps);
  const binary = isLocalUri(virsh.uri) ? onPath('passt', o.env) : 'remote';
  let passt: boolean;
  let passtWhy: string;
  if (listed === false) {
    passt = false;
    passtWhy = `libvirt ${v.daemon ?? '?'} does not list passt as an interface backend`;
  } else if (listed === null && !versionAtLeast(v.daemon, [9, 2, 0])) {
    passt = false;
    passtWhy = `libvirt ${v.daemon ?? '?'} predates passt support (9.2): port forwards go through QEMU's slirp (hostfwd_add)`;
  } else if (!binary) {
    passt = false;
    passtWhy = "passt is not installed (apt-get install passt): port forwards go through QEMU's slirp (hostfwd_add)";
  } else {
    passt = true;
    passtWhy = `libvirt ${v.daemon ?? '?'} accepts passt`;
  }
  return { daemonVersion: v.daemon, hypervisor: v.hypervisor, passt, passtWhy };
}
