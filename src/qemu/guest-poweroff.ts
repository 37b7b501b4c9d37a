/**
 * The graceful stop's second try: ask the guest over SSH to power off (as Vagrant's `halt`
 * does), for guests that do not act on the ACPI power button (stock Debian cloud images without
 * acpid). Only over the VM's own forwarded SSH port and key, and only to a guest that presents
 * the VM's pinned host key, as `tend exec` requires (src/ssh/known-hosts.ts; nothing new is
 * pinned here); a guest that cannot be reached, refuses, or shows another key is left to SIGTERM.
 */
import type { VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import type { Logger } from '../log.js';
import { sshExec } from '../ssh/exec.js';
import { hostAlias, hostKeyCheck } from '../ssh/known-hosts.js';
import { sshUser } from '../ssh/user.js';
import { readInstanceId } from '../state/instance-id.js';
import { vmFile } from '../state/paths.js';
import type { PortRecord } from './ports.js';

/** What runs in the guest: root powers off directly, anyone else through passwordless sudo. */
export const POWEROFF_COMMAND = 'if [ "$(id -u)" = 0 ]; then poweroff; else sudo -n poweroff; fi';

/** How long the SSH attempt may take (connect + command). */
export const POWEROFF_SSH_TIMEOUT_MS = 5000;

/**
 * True when the guest accepted the request (the command succeeded, or the session dropped as
 * the guest went down); false when it could not be reached or refused.
 */
export async function guestPoweroff(
  projDir: string,
  vm: VmSpec,
  o: { env: NodeJS.ProcessEnv; signal?: AbortSignal; log?: Logger; ports: PortRecord | undefined; project: string },
): Promise<boolean> {
  const ssh = o.ports?.ssh;
  const m = ssh ? /^(.*):(\d+)$/.exec(ssh) : null;
  if (!m) return false; // no forwarded SSH port (tap/none networking): not reachable from here
  const host = m[1] === '0.0.0.0' ? '127.0.0.1' : (m[1] as string);
  const check = await hostKeyCheck(
    vmFile(projDir, vm.name, 'knownHosts'),
    await readInstanceId(projDir, vm.name),
    hostAlias(o.project, vm.name),
    { pinNew: false, where: `${vm.name} (${host}:${m[2]})` },
  );
  try {
    const r = await sshExec({
      host,
      port: Number(m[2]),
      user: sshUser(vm),
      privateKey: vm.ssh.privateKey ?? vmFile(projDir, vm.name, 'privateKey'),
      command: POWEROFF_COMMAND,
      timeoutMs: POWEROFF_SSH_TIMEOUT_MS,
      ...(o.signal ? { signal: o.signal } : {}),
      hostVerifier: check.verifier,
    });
    if (r.code !== 0) o.log?.debug({ vm: vm.name, code: r.code, stderr: r.stderr.trim() }, 'in-guest poweroff refused');
    return r.code === 0;
  } catch (err) {
    if (o.signal?.aborted) throw err;
    try {
      await check.settle();
    } catch (changed) {
      // another host key on the VM's disk: nothing was sent; say why the stop goes on to SIGTERM
      o.log?.warn({ vm: vm.name, err: changed }, (changed as Error).message);
      return false;
    }
    // the guest going down mid-command ends the session: the request was delivered
    if (err instanceof BackendError && err.reason === 'SshSessionLost') return true;
    o.log?.debug({ vm: vm.name, err }, 'in-guest poweroff over SSH not possible');
    return false;
  }
}
