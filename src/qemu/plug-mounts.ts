/** A restored warm clone's volumes and host folders plugged in and mounted (src/qemu/hotplug.ts says how). */
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { socketPath, vmFile } from '../state/paths.js';
import { readInstanceId } from '../state/instance-id.js';
import { hostAlias, hostKeyCheck } from '../ssh/known-hosts.js';
import { sshUser } from '../ssh/user.js';
import { shellQuote } from '../ssh/shell-quote.js';
import { QmpClient } from './qmp.js';
import { guestMountScript, hotplugCommands } from './hotplug.js';
import type { HostFolderShare } from './volumes.js';
import type { QemuContext } from './context.js';

/**
 * Plug a restored clone's volumes and host folders in and mount them in the guest (its identity is
 * its own already: the VM's login key and pinned host key). Throws HotplugFailed.
 */
export async function plugMounts(
  ctx: QemuContext,
  project: Project,
  pd: string,
  vm: VmSpec,
  o: { volumes: Record<string, string>; shares: readonly HostFolderShare[]; sshPort: number; signal?: AbortSignal },
): Promise<void> {
  if (vm.volumes.length === 0) return;
  const t0 = ctx.clock.now();
  const qmp = await QmpClient.connect(socketPath(pd, vm.name, 'qmp', ctx.env), { timeoutMs: 5000 });
  try {
    for (const c of hotplugCommands(vm, o.volumes, o.shares)) {
      await qmp.execute(c.execute, c.arguments, { timeoutMs: 10_000 }).catch((err: unknown) => {
        throw new BackendError('HotplugFailed', `${vm.name}: QEMU refused ${c.execute} (${(err as Error).message})`, { cause: err });
      });
    }
  } finally {
    qmp.close();
  }
  const { sshExec } = await import('../ssh/exec.js');
  const check = await hostKeyCheck(vmFile(pd, vm.name, 'knownHosts'), await readInstanceId(pd, vm.name), hostAlias(project.name, vm.name), {
    pinNew: false,
    where: `${vm.name} (127.0.0.1:${o.sshPort})`,
  });
  const exec = () =>
    sshExec({
      host: '127.0.0.1',
      port: o.sshPort,
      user: sshUser(vm),
      privateKey: vm.ssh.privateKey ?? vmFile(pd, vm.name, 'privateKey'),
      command: `sudo -n sh -c ${shellQuote(guestMountScript(vm))}`,
      timeoutMs: 90_000,
      hostVerifier: check.verifier,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  // the identity step has just sent sshd a SIGHUP (its new host key): while it re-executes itself
  // a connection may be refused or dropped, so connecting is tried again for a while
  const deadline = ctx.clock.now() + 20_000;
  let r;
  for (;;) {
    try {
      r = await exec();
      break;
    } catch (err) {
      const retry = err instanceof BackendError && err.reason === 'SshConnectFailed' && !/verification failed/.test(err.message);
      if (o.signal?.aborted || !retry || ctx.clock.now() > deadline)
        throw new BackendError('HotplugFailed', `${vm.name}: could not reach the guest to mount its volumes (${(err as Error).message})`, {
          cause: err,
        });
      await ctx.clock.sleep(300, o.signal);
    }
  }
  if (r.code !== 0)
    throw new BackendError(
      'HotplugFailed',
      `${vm.name}: the guest did not mount its volumes (exit ${r.code}: ${r.stderr.trim().slice(-300)})`,
    );
  ctx.log?.info(
    { vm: vm.name },
    `volumes and host folders plugged into the warm clone and mounted (${vm.volumes.map((m) => m.target).join(', ')}; ${((ctx.clock.now() - t0) / 1000).toFixed(1)} s)`,
  );
}
