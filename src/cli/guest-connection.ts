/**
 * The SSH connection a command opens to a running VM (`tend exec`, `tend cp`): the VM's key,
 * login user (or -u), forwarded port (a TAP guest: its own address) and pinned host key, with
 * nothing new pinned (the guest may not be Ready yet). Its failures name the next step: an
 * unreachable guest gets the caller's `unreachable` hint, a -u user that refuses the VM's key
 * says how to authorise it.
 */
import type { Client } from 'ssh2';
import type { VmSpec } from '../../schemas/model.js';
import { BackendError, TendError } from '../../schemas/errors.js';
import type { SshTarget } from '../ssh/exec.js';
import type { Context } from './context.js';

/** SSH failures where the guest is most likely still booting (or never booted). */
const UNREACHABLE = new Set(['SshConnectFailed', 'SshTimeout', 'NoSshPort']);

export interface CommandConnection {
  client: Client;
  /** where and as whom it is logged in */
  target: SshTarget;
}

export async function connectForCommand(
  ctx: Context,
  spec: VmSpec,
  o: {
    /** log in as this user instead of the VM's (-u) */
    user?: string | undefined;
    signal?: AbortSignal | undefined;
    /** what to do when the guest does not answer: "is it still booting? ..." */
    unreachable: string;
  },
): Promise<CommandConnection> {
  const { sshTarget, connectGuest } = await import('../ssh/guest.js');
  const base = await sshTarget(ctx.stateRoot, ctx.project, spec, ctx.env);
  const target = { ...base, ...(o.user ? { user: o.user } : {}) };
  try {
    // the host key must match the VM's pin when it has one; nothing new is pinned here
    const client = await connectGuest(ctx.stateRoot, ctx.project, spec, { signal: o.signal, env: ctx.env, target, pinNew: false });
    return { client, target };
  } catch (err) {
    if (err instanceof TendError && UNREACHABLE.has(err.reason))
      throw new BackendError(err.reason, `${err.message}: ${o.unreachable}`, { cause: err });
    if (err instanceof TendError && err.reason === 'SshAuthFailed' && o.user) {
      throw new BackendError(
        err.reason,
        `${spec.name}: user ${o.user} does not accept ${target.privateKey} (-u ${o.user}): add ${target.privateKey}.pub to that user's ~/.ssh/authorized_keys in the guest, or leave out -u to log in as ${base.user}`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Closes a command's connection, ignoring errors of a connection that is going away. */
export function closeConnection(client: Client): void {
  client.on('error', () => {});
  client.end();
}
