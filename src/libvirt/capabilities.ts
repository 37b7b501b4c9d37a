/**
 * What the libvirt on a connection can do, asked of libvirt itself: its daemon's version, the
 * hypervisor's version, and whether user-mode NICs may use passt (`<backend type='passt'/>` with
 * `<portForward>`). Newer libvirt lists it in domcapabilities (`<enum name='backendType'>`);
 * where it does not, a test define of a throwaway domain with the passt backend answers (Debian
 * 12's 9.0.0 rejects the element), and only when that is inconclusive the version (>= 9.2). On
 * this host the passt binary must be installed too.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

/** A throwaway domain whose only device is a user NIC with the passt backend: what a test define sends. */
export function passtProbeXml(name: string): string {
  return (
    `<domain type='qemu'><name>${name}</name><memory unit='MiB'>16</memory><os><type arch='x86_64'>hvm</type></os>` +
    `<devices><interface type='user'><backend type='passt'/><model type='virtio'/></interface></devices></domain>`
  );
}

/**
 * Ask libvirt itself whether it takes `<backend type='passt'/>`, by defining a throwaway domain
 * that has one (then undefining it): libvirt 9.0 refuses it while parsing ("Invalid value for
 * attribute 'type' in element 'backend': 'passt'"), so nothing is created there. null when the test
 * define fails for another reason (the version decides then).
 */
export async function passtByTestDefine(virsh: Virsh, signal?: AbortSignal): Promise<{ accepted: boolean; why: string } | null> {
  const name = `tend-passt-probe-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  // virsh reads the file itself (client side, also for a remote URI); /dev/stdin is a socket under node
  const dir = await mkdtemp(join(tmpdir(), 'tend-passt-'));
  const file = join(dir, 'probe.xml');
  try {
    await writeFile(file, passtProbeXml(name));
    try {
      await virsh.run(['define', file], signal ? { signal } : {});
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/passt/.test(msg) && /invalid|unsupported|not supported/i.test(msg)) {
        return { accepted: false, why: msg.replace(/^virsh define [^:]*: (Failed to define domain from \S+; )?/, '').trim() };
      }
      return null;
    }
    await virsh.tryRun(['undefine', name]);
    return { accepted: true, why: 'a test define with the passt backend succeeded' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function probeCapabilities(
  virsh: Virsh,
  o: { signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {},
): Promise<LibvirtCapabilities> {
  const v = parseVersion(await virsh.run(['version', '--daemon'], o.signal ? { signal: o.signal } : {}));
  const domcaps = (await virsh.tryRun(['domcapabilities'], o.signal ? { signal: o.signal } : {})) ?? '';
  // libvirt lists interface backends in domcapabilities only from 9.x on; else a test define says
  const test = passtFromDomcaps(domcaps) === null ? await passtByTestDefine(virsh, o.signal) : null;
  const listed = passtFromDomcaps(domcaps) ?? test?.accepted ?? null;
  const binary = isLocalUri(virsh.uri) ? onPath('passt', o.env) : 'remote';
  let passt: boolean;
  let passtWhy: string;
  if (listed === false) {
    passt = false;
    passtWhy = test
      ? `libvirt ${v.daemon ?? '?'} rejects the passt backend (a test define: ${test.why}): port forwards go through QEMU's slirp (hostfwd_add)`
      : `libvirt ${v.daemon ?? '?'} does not list passt as an interface backend`;
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
