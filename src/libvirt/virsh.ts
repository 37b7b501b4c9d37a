/**
 * The libvirt client tend drives: `virsh -c URI ...` through execa, always an argv array (never
 * a shell string; XML goes in on stdin). No Node binding to libvirt builds here without a
 * compiler toolchain and network headers, and virsh is what every libvirt host already has.
 * Failures become BackendError with virsh's own message; an unreachable daemon gets its own
 * reason (LibvirtUnavailable) and the fix.
 */
import { execa } from 'execa';
import { BackendError } from '../../schemas/errors.js';

export interface Virsh {
  readonly uri: string;
  /** run one virsh command; resolves with stdout (trimmed), throws BackendError */
  run(args: readonly string[], o?: { signal?: AbortSignal; input?: string; timeoutMs?: number }): Promise<string>;
  /** like run, but resolves null when virsh fails (e.g. no such domain) */
  tryRun(args: readonly string[], o?: { signal?: AbortSignal; timeoutMs?: number }): Promise<string | null>;
}

export interface VirshOptions {
  uri: string;
  env?: NodeJS.ProcessEnv;
  /** default: virsh from PATH */
  binary?: string;
  /** per-command limit (default 60 s) */
  timeoutMs?: number;
}

/** How to get a daemon on this URI running (for error messages and `tend doctor`). */
export function daemonFix(uri: string): string {
  if (/^qemu:\/\/\/session/.test(uri)) {
    return 'start the session daemon: `systemctl --user enable --now virtqemud.socket` (or run `libvirtd --daemon` as your user), or select `backend: qemu`';
  }
  if (/^qemu:\/\/\/system/.test(uri)) {
    return 'start libvirt: `systemctl enable --now libvirtd` (without systemd: `virtlogd -d && libvirtd -d` as root; apt-get install libvirt-daemon-system), or select `backend: qemu`';
  }
  return `check that the host is reachable and runs libvirt (\`virsh -c ${uri} version\`), or select \`backend: qemu\``;
}

const UNREACHABLE =
  /failed to connect to the hypervisor|Failed to connect socket|no connection driver available|Cannot recv data|End of file while reading data|Connection refused|No such file or directory.*sock/i;

export function createVirsh(o: VirshOptions): Virsh {
  const binary = o.binary ?? 'virsh';
  const env = { ...(o.env ?? process.env), LC_ALL: 'C' };
  const run = async (args: readonly string[], r: { signal?: AbortSignal; input?: string; timeoutMs?: number } = {}): Promise<string> => {
    let res;
    try {
      res = await execa(binary, ['-q', '-c', o.uri, ...args], {
        env,
        reject: false,
        timeout: r.timeoutMs ?? o.timeoutMs ?? 60_000,
        ...(r.signal ? { cancelSignal: r.signal } : {}),
        ...(r.input !== undefined ? { input: r.input } : { stdin: 'ignore' }),
        stripFinalNewline: true,
      });
    } catch (err) {
      throw new BackendError('LibvirtError', `virsh ${args[0]}: ${(err as Error).message}`, { cause: err });
    }
    if (res.isCanceled) throw r.signal?.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
    if ((res as { code?: string }).code === 'ENOENT' || (res.failed && res.exitCode === undefined && /ENOENT/.test(String(res.message)))) {
      throw new BackendError('LibvirtMissing', `virsh is not installed (apt-get install libvirt-clients), needed for ${o.uri}`);
    }
    if (res.timedOut)
      throw new BackendError(
        'LibvirtError',
        `virsh ${args[0]} on ${o.uri} did not answer within ${Math.round((r.timeoutMs ?? o.timeoutMs ?? 60_000) / 1000)} s`,
      );
    if (res.exitCode === undefined && res.signal) {
      // virsh itself crashed or was killed (libvirt 9.0's client has been seen to segfault, rarely,
      // on a remote connection): say so instead of "exit undefined"
      throw new BackendError('LibvirtError', `virsh ${args.join(' ').slice(0, 200)} on ${o.uri} was killed by ${res.signal}`);
    }
    if (res.exitCode !== 0) {
      const msg = String(res.stderr)
        .trim()
        .replace(/^error: /gm, '')
        .split('\n')
        .filter(Boolean)
        .join('; ');
      if (UNREACHABLE.test(msg)) {
        throw new BackendError('LibvirtUnavailable', `libvirt does not answer on ${o.uri} (${msg}): ${daemonFix(o.uri)}`);
      }
      throw new BackendError('LibvirtError', `virsh ${args.join(' ').slice(0, 200)}: ${msg || `exit ${res.exitCode}`}`);
    }
    return String(res.stdout).trim();
  };
  return {
    uri: o.uri,
    run,
    async tryRun(args, r = {}) {
      try {
        return await run(args, r);
      } catch (err) {
        if (err instanceof BackendError && err.reason === 'LibvirtError') return null;
        throw err;
      }
    },
  };
}

/** One row of `virsh list --all`. */
export interface DomainRow {
  name: string;
  /** libvirt's words: running, paused, shut off, crashed, in shutdown, pmsuspended, idle, dying */
  state: string;
  /** the domain id while active, null when shut off */
  id: number | null;
}

/** Parse the table of `virsh -q list --all` (header suppressed by -q). */
export function parseDomainList(text: string): DomainRow[] {
  const rows: DomainRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+|-)\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    rows.push({ name: m[2], state: m[3], id: m[1] === '-' ? null : Number(m[1]) });
  }
  return rows;
}
