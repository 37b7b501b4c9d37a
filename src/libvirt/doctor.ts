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
import { parseRemoteUri, remoteLabel } from './remote-uri.js';
import { POOL_DIR, POOL_NAME } from './pool.js';

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
  /** a remote URI: the SSH jump to its host and its `tend` pool (null for a local URI) */
  remote: {
    host: string;
    /** null: works; else why not */
    ssh: string | null;
    /** the pool's directory, null when it is not defined yet (the first up creates it) */
    pool: string | null;
    /** null: a test volume was created and deleted in it (or no pool yet); else why not */
    poolError: string | null;
  } | null;
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
    remote: null,
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
  const r = parseRemoteUri(uri);
  if (r) {
    report.remote = await remoteChecks(uri, env, report.answers, o.virsh);
    if (o.required && report.remote.ssh) problems.push(`guests on ${report.remote.host} are out of reach: ${report.remote.ssh}`);
    if (o.required && report.remote.poolError)
      problems.push(`storage pool "${POOL_NAME}" on ${report.remote.host}: ${report.remote.poolError}`);
  }
  return { report, problems };
}

/** The SSH jump (an authenticated login and `true`), and the pool: a 1-byte volume created and deleted. */
async function remoteChecks(
  uri: string,
  env: NodeJS.ProcessEnv,
  answers: boolean,
  binary?: string,
): Promise<NonNullable<LibvirtDoctorReport['remote']>> {
  const r = parseRemoteUri(uri);
  const out: NonNullable<LibvirtDoctorReport['remote']> = { host: r ? remoteLabel(r) : uri, ssh: null, pool: null, poolError: null };
  try {
    const { connectJump, jumpOf } = await import('../ssh/jump.js');
    const { execOnClient } = await import('../ssh/exec.js');
    const j = jumpOf(uri, env);
    if (j) {
      const c = await connectJump(j, { env, readyTimeoutMs: 15_000 });
      try {
        const res = await execOnClient(c, { host: j.host, port: j.port, user: j.user, privateKey: j.keyfile ?? '' }, 'true');
        if (res.code !== 0) out.ssh = `\`true\` exited ${res.code} on ${j.label}`;
      } finally {
        c.on('error', () => {});
        c.end();
      }
    }
  } catch (err) {
    out.ssh = (err as Error).message;
  }
  if (!answers) return out;
  const virsh = createVirsh({ uri, env, timeoutMs: 30_000, ...(binary ? { binary } : {}) });
  const xml = await virsh.tryRun(['pool-dumpxml', POOL_NAME]);
  if (xml === null) return out;
  out.pool = /<target>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1] ?? '?';
  const probe = `.tend-doctor-${process.pid}`;
  try {
    if (!/^State:\s+running/m.test(await virsh.run(['pool-info', POOL_NAME])))
      throw new Error('the pool is not running (virsh pool-start tend)');
    await virsh.run(['vol-create-as', POOL_NAME, probe, '1', '--format', 'raw']);
    await virsh.run(['vol-delete', '--pool', POOL_NAME, probe]);
  } catch (err) {
    out.poolError = (err as Error).message;
  }
  return out;
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
  if (r.remote) {
    lines.push(`ssh jump:    ${r.remote.host}: ${r.remote.ssh === null ? 'works (guests are reached through it)' : r.remote.ssh}`);
    lines.push(
      `pool:        ${
        r.remote.pool === null
          ? `"${POOL_NAME}" not defined yet (the first up creates it at ${POOL_DIR} on a /system URI)`
          : `"${POOL_NAME}" at ${r.remote.pool}: ${r.remote.poolError === null ? 'works (a test volume was created and deleted)' : r.remote.poolError}`
      }`,
    );
  }
  return lines;
}
