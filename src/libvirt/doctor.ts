/**
 * `tend doctor`, libvirt part: for each connection URI in play (the flag, the project's VMs, the
 * environment, else the default for this user), whether a daemon answers — the socket found for a
 * local URI (virtqemud-sock first, then libvirt-sock, as ov probes), asked for real with
 * `virsh version --daemon` — its versions, whether user networking will use passt, and OVMF. A
 * daemon that does not answer is a problem only when some VM selects libvirt (pinned, not `auto`).
 */
import { BackendError } from '../../schemas/errors.js';
import { findOvmf } from '../qemu/firmware.js';
import { createVirsh, daemonFix } from './virsh.js';
import { isLocalUri, probeSocket, socketCandidates } from './connect.js';
import { onPath, probeCapabilities } from './capabilities.js';

export interface LibvirtDoctorReport {
  uri: string;
  /** some VM (or the flag) pins libvirt on this URI: a dead daemon is then a problem */
  required: boolean;
  /** local URIs: the socket that accepted a connection; null: none (or a remote URI) */
  socket: string | null;
  /** sockets looked at (local URIs) */
  looked: string[];
  answers: boolean;
  error: string | null;
  daemonVersion: string | null;
  hypervisor: string | null;
  passt: { installed: string | null; used: boolean; why: string | null };
  ovmf: string | null;
}

export async function libvirtDoctor(
  uri: string,
  o: { required: boolean; env?: NodeJS.ProcessEnv; virsh?: string },
): Promise<{ report: LibvirtDoctorReport; problems: string[] }> {
  const env = o.env ?? process.env;
  const looked = socketCandidates(uri, env);
  const socket = isLocalUri(uri) ? await probeSocket(uri, env) : null;
  const report: LibvirtDoctorReport = {
    uri,
    required: o.required,
    socket,
    looked,
    answers: false,
    error: null,
    daemonVersion: null,
    hypervisor: null,
    passt: { installed: onPath('passt', env), used: false, why: null },
    ovmf: (await findOvmf('uefi'))?.code ?? null,
  };
  const problems: string[] = [];
  try {
    const caps = await probeCapabilities(createVirsh({ uri, env, timeoutMs: 15_000, ...(o.virsh ? { binary: o.virsh } : {}) }), { env });
    report.answers = true;
    report.daemonVersion = caps.daemonVersion;
    report.hypervisor = caps.hypervisor;
    report.passt.used = caps.passt;
    report.passt.why = caps.passtWhy;
  } catch (err) {
    report.error = err instanceof BackendError ? err.message : (err as Error).message;
    if (o.required) problems.push(`libvirt on ${uri} does not answer, but a VM selects it: ${daemonFix(uri)}`);
  }
  return { report, problems };
}

export function renderLibvirtDoctor(r: LibvirtDoctorReport): string[] {
  const where = r.socket ? `socket ${r.socket}` : r.looked.length > 0 ? `no socket answers (looked at ${r.looked.join(', ')})` : 'remote';
  const lines = [
    r.answers
      ? `libvirt:     ${r.uri}: libvirt ${r.daemonVersion ?? '?'}${r.hypervisor ? ` (${r.hypervisor})` : ''}, ${where}`
      : `libvirt:     ${r.uri}: no daemon answers (${where})${r.required ? '' : ' — only needed for backend: libvirt/auto'}`,
    `passt:       ${r.passt.installed ?? 'not installed'}${r.answers ? ` — ${r.passt.used ? 'used for user networking' : `not used: ${r.passt.why ?? ''}`}` : ''}`,
    `OVMF:        ${r.ovmf ?? 'not found (firmware: uefi needs apt-get install ovmf)'}`,
  ];
  return lines;
}
