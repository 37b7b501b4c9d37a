/**
 * `tend exec NAME -- CMD...`: run one command in the guest over SSH with the VM's key, login
 * user (src/ssh/user.ts) and forwarded SSH port; its output streams to our stdout/stderr and its exit code becomes ours.
 */
import { UsageError } from '../../errors.js';
import { backendFor, loadContext, vmSpec, type GlobalOptions } from '../context.js';
import { parseDuration } from '../output.js';
import { shellQuote, sshExec } from '../../ssh/exec.js';

export interface ExecCommandOptions extends GlobalOptions {
  name: string;
  argv: string[];
  /** -w/--wait: wait up to this long ("5m", "90s") for the VM to be Ready before running */
  waitFor?: string;
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

export interface ExecResult {
  vm: string;
  code: number;
  stdout: string;
  stderr: string;
}

export { shellQuote };

export async function execCommand(o: ExecCommandOptions): Promise<ExecResult> {
  if (o.argv.length === 0) throw new UsageError('nothing to run: write `tend exec NAME -- COMMAND [ARGS...]`', 'NoCommand');
  const ctx = await loadContext(o);
  const spec = vmSpec(ctx.project, o.name);
  const backend = await backendFor(ctx);
  const { sshTarget, createSshGuest } = await import('../../ssh/guest.js');
  const deadline = o.waitFor ? Date.now() + parseDuration(o.waitFor, '--wait') : 0;
  for (;;) {
    const obs = (await backend.observe(ctx.project, o.signal)).vms[o.name];
    if (obs && obs.power === 'running' && obs.sshPort) break;
    if (Date.now() >= deadline) {
      throw new UsageError(`${o.name} is not running${o.waitFor ? ` after waiting ${o.waitFor}` : ''}: \`tend start ${o.name}\` first`, 'VmNotRunning');
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (o.waitFor) {
    const readyTimeoutMs = Math.max(1000, deadline - Date.now());
    await createSshGuest({ stateRoot: ctx.stateRoot, env: ctx.env, readyTimeoutMs }).waitReady(ctx.project, spec, o.signal);
  }
  const r = await sshExec({
    ...(await sshTarget(ctx.stateRoot, ctx.project, spec)),
    command: o.argv.map(shellQuote).join(' '),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.stdout ? { onStdout: o.stdout } : {}),
    ...(o.stderr ? { onStderr: o.stderr } : {}),
  });
  return { vm: o.name, ...r };
}
