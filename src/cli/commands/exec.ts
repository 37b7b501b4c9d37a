/**
 * `tend exec NAME -- CMD...`: run one command in the guest over SSH with the VM's key, login
 * user (src/ssh/user.ts) and forwarded SSH port; its output streams to our stdout/stderr and its exit code becomes ours.
 */
import { UsageError } from '../../errors.js';
import { backendFor, loadContext, vmSpec, type GlobalOptions } from '../context.js';

export interface ExecCommandOptions extends GlobalOptions {
  name: string;
  argv: string[];
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

export interface ExecResult {
  vm: string;
  code: number;
  stdout: string;
  stderr: string;
}

/** POSIX-shell quoting of one word. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export async function execCommand(o: ExecCommandOptions): Promise<ExecResult> {
  if (o.argv.length === 0) throw new UsageError('nothing to run: write `tend exec NAME -- COMMAND [ARGS...]`', 'NoCommand');
  const ctx = await loadContext(o);
  const spec = vmSpec(ctx.project, o.name);
  const backend = await backendFor(ctx);
  const obs = (await backend.observe(ctx.project, o.signal)).vms[o.name];
  if (!obs || obs.power === 'stopped' || !obs.sshPort) {
    throw new UsageError(`${o.name} is not running: \`tend start ${o.name}\` first`, 'VmNotRunning');
  }
  const [{ sshExec }, { sshTarget }] = await Promise.all([import('../../ssh/exec.js'), import('../../ssh/guest.js')]);
  const r = await sshExec({
    ...(await sshTarget(ctx.stateRoot, ctx.project, spec)),
    command: o.argv.map(shellQuote).join(' '),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.stdout ? { onStdout: o.stdout } : {}),
    ...(o.stderr ? { onStderr: o.stderr } : {}),
  });
  return { vm: o.name, ...r };
}
