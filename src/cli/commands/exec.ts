/**
 * `tend exec NAME -- CMD...`: run one command in the guest over SSH with the VM's key and
 * forwarded SSH port; its output streams to our stdout/stderr and its exit code becomes ours.
 */
import type { VmSpec } from '../../../schemas/model.js';
import { catalogEntry, OS_USERS } from '../../images/catalog.js';
import { UsageError } from '../../errors.js';
import { vmFile } from '../../state/paths.js';
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

/** The login user: declared, else cloud-init's user, else the image's convention, else "tend". */
export function loginUser(vm: VmSpec): string {
  if (vm.ssh.user) return vm.ssh.user;
  if (vm.cloudInit?.user) return vm.cloudInit.user;
  if (vm.image.kind === 'catalog') {
    const e = catalogEntry(vm.image.ref);
    if (e) return e.user;
  }
  if (vm.image.os && OS_USERS[vm.image.os]) return OS_USERS[vm.image.os];
  return 'tend';
}

export async function execCommand(o: ExecCommandOptions): Promise<ExecResult> {
  if (o.argv.length === 0) throw new UsageError('nothing to run: write `tend exec NAME -- COMMAND [ARGS...]`', 'NoCommand');
  const ctx = loadContext(o);
  const spec = vmSpec(ctx.project, o.name);
  const backend = await backendFor(ctx);
  const obs = (await backend.observe(ctx.project, o.signal)).vms[o.name];
  if (!obs || obs.power === 'stopped' || !obs.sshPort) {
    throw new UsageError(`${o.name} is not running: \`tend start ${o.name}\` first`, 'VmNotRunning');
  }
  const { sshExec } = await import('../../ssh/exec.js');
  const r = await sshExec({
    host: '127.0.0.1',
    port: obs.sshPort,
    user: loginUser(spec),
    privateKey: spec.ssh.privateKey ?? vmFile(ctx.projDir, o.name, 'privateKey'),
    command: o.argv.map(shellQuote).join(' '),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.stdout ? { onStdout: o.stdout } : {}),
    ...(o.stderr ? { onStderr: o.stderr } : {}),
  });
  return { vm: o.name, ...r };
}
