/**
 * Where SSH reaches a guest on a TAP bridge (`network "tap" { bridge "br0" }`): no port is
 * forwarded in that mode, so tend connects to the guest's own IPv4 address, on `ssh.port` (22
 * by default). The address is found by the NIC's stable MAC (src/net/mac.ts) in the host's
 * neighbour table, then in DHCP lease files (src/net/guest-ip.ts): guest-ip.ts's defaults, or
 * the files named by $TEND_LEASE_FILES (colon-separated; an empty entry stands for the
 * defaults, so `TEND_LEASE_FILES=/run/br0.leases:` adds one file to them).
 *
 * Host keys are pinned by VM and disk, not by address (src/ssh/known-hosts.ts), so a guest that
 * takes a new DHCP address keeps its pin.
 */
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { DEFAULT_LEASE_FILES, findGuestIp, type GuestAddress } from '../net/guest-ip.js';
import { tapMac } from '../net/mac.js';
import { projectDir, vmFile } from '../state/paths.js';
import type { SshTarget } from './exec.js';
import type { GuestLocator } from './ready.js';
import { sshUser } from './user.js';

export const LEASE_FILES_ENV = 'TEND_LEASE_FILES';

/** The lease files to read: $TEND_LEASE_FILES, where an empty entry means the defaults (pure). */
export function leaseFiles(env: NodeJS.ProcessEnv, defaults: readonly string[] = DEFAULT_LEASE_FILES): string[] {
  const v = env[LEASE_FILES_ENV];
  if (v === undefined || v.trim() === '') return [...defaults];
  const out: string[] = [];
  for (const part of v.split(':')) out.push(...(part.trim() === '' ? defaults : [part.trim()]));
  return [...new Set(out)];
}

/** What tend knows about a TAP guest before it has an address. */
export interface TapGuest {
  vm: string;
  mac: string;
  /** null: a TAP device made beforehand, on whatever bridge the host put it */
  bridge: string | null;
  /** the guest's sshd port */
  port: number;
  leaseFiles: string[];
}

export function tapGuest(stateRoot: string, project: Project, vm: VmSpec, env: NodeJS.ProcessEnv): TapGuest {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  return { vm: vm.name, mac: tapMac(projDir, vm.name), bridge: vm.network.bridge, port: vm.ssh.port, leaseFiles: leaseFiles(env) };
}

/** The progress line while the address is not known. */
export function addressWaitingLine(g: TapGuest): string {
  return `waiting for the guest's address on ${g.bridge ?? 'its TAP device'} (MAC ${g.mac})`;
}

/** Why the address is not known, and what to check (`seconds`: how long readiness waited; null: a one-off lookup). */
export function addressUnknownMessage(g: TapGuest, seconds: number | null): string {
  const on = g.bridge ?? 'the bridge of its TAP device';
  return (
    `${g.vm} has no known IPv4 address ${seconds === null ? 'yet' : `after ${seconds} s`} (TAP on ${on}, MAC ${g.mac}). ` +
    `tend looks that MAC up in the neighbour table (ip -4 neigh) and in the DHCP leases in ${g.leaseFiles.join(', ')}. ` +
    `Is a DHCP server (e.g. dnsmasq) serving ${on}? If it keeps its leases in another file, name it in $${LEASE_FILES_ENV} (colon-separated). ` +
    `Is the guest booting (tend logs ${g.vm} --console)?`
  );
}

export type FindGuestIp = typeof findGuestIp;

/** The guest's address now, or null. */
export function lookupTapAddress(g: TapGuest, env: NodeJS.ProcessEnv, find: FindGuestIp = findGuestIp): Promise<GuestAddress | null> {
  return find(g.mac, { leaseFiles: g.leaseFiles, env });
}

/** The user and key tend logs in with (the file's, else the generated key). */
export function sshLogin(stateRoot: string, project: Project, vm: VmSpec): Pick<SshTarget, 'user' | 'privateKey'> {
  const projDir = projectDir(stateRoot, project.name, project.dir);
  return { user: sshUser(vm), privateKey: vm.ssh.privateKey ?? vmFile(projDir, vm.name, 'privateKey') };
}

/** The SSH target of a running TAP guest; GuestAddressUnknown while it has no address. */
export async function tapSshTarget(
  stateRoot: string,
  project: Project,
  vm: VmSpec,
  env: NodeJS.ProcessEnv,
  find: FindGuestIp = findGuestIp,
): Promise<SshTarget> {
  const g = tapGuest(stateRoot, project, vm, env);
  const found = await lookupTapAddress(g, env, find);
  if (!found) throw new BackendError('GuestAddressUnknown', addressUnknownMessage(g, null));
  return { host: found.address, port: g.port, ...sshLogin(stateRoot, project, vm) };
}

/** "10.0.0.5:22" of a TAP guest for `tend ps`/`status`, or null while it has no address. */
export async function tapSshAddress(stateRoot: string, project: Project, vm: VmSpec, env: NodeJS.ProcessEnv): Promise<string | null> {
  const g = tapGuest(stateRoot, project, vm, env);
  const found = await lookupTapAddress(g, env).catch(() => null);
  return found ? `${found.address}:${g.port}` : null;
}

/**
 * Readiness of a TAP guest: a target whose host is filled in (in place) once the address is
 * found, the locator waitForSsh polls in its banner stage, and the progress line to show first.
 * `onProgress` hears when an address is found, and when it changes.
 */
export function tapReadiness(
  stateRoot: string,
  project: Project,
  vm: VmSpec,
  env: NodeJS.ProcessEnv,
  onProgress?: (line: string) => void,
  find: FindGuestIp = findGuestIp,
): { target: SshTarget; locate: GuestLocator; waiting: string } {
  const g = tapGuest(stateRoot, project, vm, env);
  const target: SshTarget = { host: '', port: g.port, ...sshLogin(stateRoot, project, vm) };
  const locate: GuestLocator = {
    async find() {
      const found = await lookupTapAddress(g, env, find);
      if (found && found.address !== target.host) {
        target.host = found.address;
        const from = found.source === 'lease' ? 'its DHCP lease' : `the neighbour table${found.dev ? ` on ${found.dev}` : ''}`;
        onProgress?.(`address ${found.address} (from ${from}): waiting for SSH on ${found.address}:${g.port}`);
      }
      return found?.address ?? null;
    },
    unknown: (seconds) => addressUnknownMessage(g, seconds),
  };
  return { target, locate, waiting: addressWaitingLine(g) };
}
