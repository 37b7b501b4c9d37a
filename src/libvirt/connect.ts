/**
 * Which libvirt a VM talks to: the connection URI, whether it is this host, and whether a daemon
 * answers on its socket (`backend: auto`). ov's probe order: the modular daemon's
 * `virtqemud-sock` first, then the monolithic `libvirt-sock`.
 */
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** qemu:///system as root, qemu:///session for everyone else (ov's default). */
export function defaultUri(uid: number = process.getuid?.() ?? 0): string {
  return uid === 0 ? 'qemu:///system' : 'qemu:///session';
}

/** A URI whose daemon runs on this host (its files are this host's files). */
export function isLocalUri(uri: string): boolean {
  return /^qemu(\+unix)?:\/\/\/(system|session)(\?.*)?$/.test(uri);
}

export function isSystemUri(uri: string): boolean {
  return /^qemu(\+unix)?:\/\/\/system(\?.*)?$/.test(uri);
}

/** Sockets a local URI's daemon listens on, in probe order. Remote URIs: none (not probed locally). */
export function socketCandidates(uri: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (!isLocalUri(uri)) return [];
  if (isSystemUri(uri)) return ['/run/libvirt/virtqemud-sock', '/run/libvirt/libvirt-sock'];
  const runtime = env.XDG_RUNTIME_DIR || join(env.HOME || homedir(), '.cache');
  return [join(runtime, 'libvirt', 'virtqemud-sock'), join(runtime, 'libvirt', 'libvirt-sock')];
}

function answers(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The first socket of a local URI that accepts a connection, or null (no daemon there). */
export async function probeSocket(uri: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 500): Promise<string | null> {
  for (const p of socketCandidates(uri, env)) if (await answers(p, timeoutMs)) return p;
  return null;
}

/**
 * Where libvirt keeps a running domain's pidfile on this host (local URIs only): the system
 * daemon under /run/libvirt/qemu, a session daemon under $XDG_RUNTIME_DIR/libvirt/qemu/run.
 */
export function domainPidfile(uri: string, domain: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (!isLocalUri(uri)) return null;
  if (isSystemUri(uri)) return `/run/libvirt/qemu/${domain}.pid`;
  const runtime = env.XDG_RUNTIME_DIR || join(env.HOME || homedir(), '.cache');
  return join(runtime, 'libvirt', 'qemu', 'run', `${domain}.pid`);
}

/**
 * Where libvirt keeps a domain's managed save (`virsh managedsave`) on this host (local URIs
 * only): the system daemon under /var/lib/libvirt/qemu/save, a session daemon under
 * $XDG_CONFIG_HOME/libvirt/qemu/save. Another host's file is not ours to see: null.
 */
export function managedSavePath(uri: string, domain: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (!isLocalUri(uri)) return null;
  if (isSystemUri(uri)) return `/var/lib/libvirt/qemu/save/${domain}.save`;
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'libvirt', 'qemu', 'save', `${domain}.save`);
}
