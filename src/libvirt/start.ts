/**
 * Starting a VM's libvirt domain: host ports, the domain defined again with them, `virsh start`,
 * then what libvirt decided at start (slirp port forwards where passt is missing, the display's
 * autoport). Start of a running domain returns what runs.
 */
import { rm } from 'node:fs/promises';
import { create } from 'xmlbuilder2';
import type { Element } from '@oozcitak/dom/lib/dom/interfaces.js';
import type { StartResult } from '../../schemas/ports.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { exists, readJson, writeJsonAtomic } from '../state/atomic.js';
import { validateAppliedRecord, validatePortRecord } from '../state/validators.generated.js';
import { FILES, socketPath, vmFile } from '../state/paths.js';
import { allocatePorts, type PortRecord } from '../qemu/ports.js';
import { discardSaved } from '../qemu/saved-state.js';
import { stageTimeoutMs } from '../timeouts.js';
import type { Forward } from './domain-xml.js';
import { domainName } from './names.js';
import { abortIf, ACTIVE, metadataOf, pdir, qemuPid, row, type LibvirtContext } from './context.js';
import { chooseType, define, setMetadata } from './define.js';
import { consumeManagedSave, discardManagedSave, managedSaveToRestore } from './managed-save.js';
import { abandonClone, makeIdentityOwn } from '../qemu/clone.js';
import { libvirtCloneToRestore, restoreClone } from './clone.js';

async function startResultOf(ctx: LibvirtContext, project: Project, name: string, signal?: AbortSignal): Promise<StartResult> {
  const dom = domainName(project, name);
  const m = await metadataOf(ctx, dom, false, signal);
  const { pid } = await qemuPid(ctx, dom, null);
  const ssh = m?.ports.ssh ? Number(m.ports.ssh.slice(m.ports.ssh.lastIndexOf(':') + 1)) : 0;
  return { pid: pid ?? 0, accel: m?.accel ?? 'tcg', sshPort: ssh, ports: m?.ports ?? {} };
}

export async function start(ctx: LibvirtContext, project: Project, vm: VmSpec, signal?: AbortSignal): Promise<StartResult> {
  abortIf(signal);
  const { env, virsh } = ctx;
  const pd = pdir(ctx, project);
  const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
  const dom = domainName(project, vm.name);
  const r = await row(ctx, dom, signal);
  if (r && ACTIVE.has(r.state)) return startResultOf(ctx, project, vm.name, signal);
  if (!(await exists(f('disk')))) throw new BackendError('VmNotPrepared', `${vm.name}: has no disk yet (prepare it first)`);
  if (await exists(f('savedRecord'))) {
    // saved by the QEMU backend before the VM moved here: libvirt cannot load QEMU's own file
    ctx.log?.warn({ vm: vm.name }, 'saved state discarded: it was saved by the QEMU backend; booting with its disk kept');
    await discardSaved(pd, vm.name);
  }

  const { accel } = await chooseType(ctx, vm);
  abortIf(signal);
  const user = vm.network.mode === 'user';
  const previous = await readJson<PortRecord>(f('ports'), validatePortRecord, () => undefined);
  const alloc = await allocatePorts(vm.name, user ? vm.ports : [], previous, { needSsh: user });
  await writeJsonAtomic(f('ports'), alloc.record);
  const forwards: Forward[] = user
    ? [
        { protocol: 'tcp', hostAddress: alloc.sshAddress, hostPort: alloc.sshPort, guestPort: vm.ssh.port },
        ...alloc.forwards.map((p) => ({
          protocol: p.protocol,
          hostAddress: p.hostAddress,
          hostPort: p.hostPort,
          guestPort: p.guestPort,
        })),
      ]
    : [];
  const prev = await metadataOf(ctx, dom, true, signal);
  const applied = await readJson<{ diskImage?: string | null }>(f('applied'), validateAppliedRecord);
  const diskImage = applied?.diskImage ?? prev?.diskImage ?? null;
  // defining again keeps a managed save (libvirt restores it with the XML saved in it)
  const xml = await define(ctx, project, vm, { ports: alloc.record, forwards, accel, diskImage }, signal);
  await rm(socketPath(pd, vm.name, 'serial', env), { force: true });
  // a saved state (stop --save: virsh managedsave) is restored by virsh start, when still valid
  let restoring = await managedSaveToRestore(ctx, pd, vm, dom, xml, signal);
  const timeoutMs = stageTimeoutMs('start', vm, ctx.timeouts, env);
  // a warm clone not started yet restores its template's memory (clone.ts), then makes its identity its own
  const template = restoring ? null : await libvirtCloneToRestore(ctx, pd, vm, xml, signal);
  let cloned = false;
  if (template) {
    const t0 = ctx.clock.now();
    try {
      await restoreClone(ctx, pd, vm, dom, xml, template, timeoutMs, signal);
      cloned = true;
      ctx.log?.debug({ vm: vm.name }, `template memory restored (${((ctx.clock.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      if (signal?.aborted) throw err;
      await virsh.tryRun(['destroy', dom]);
      await abandonClone(ctx, pd, vm, `libvirt could not restore its template (${(err as Error).message.split('\n')[0]})`);
    }
  }
  if (!cloned) {
    try {
      await virsh.run(['start', dom], { signal, timeoutMs });
    } catch (err) {
      if (!restoring || signal?.aborted) throw err;
      ctx.log?.warn(
        { vm: vm.name },
        `saved state discarded: libvirt could not restore it (${(err as Error).message.split('\n')[0]}); booting`,
      );
      await discardManagedSave(ctx, pd, vm.name, dom, signal);
      restoring = false;
      await virsh.run(['start', dom], { signal, timeoutMs });
    }
  }
  let restored = false;
  if (restoring) {
    // used once: from now on the disk moves on without it
    await consumeManagedSave(pd, vm.name);
    // libvirt boots instead when its state file's header is unreadable (it deletes the file)
    restored = !/\(booted\)/.test((await virsh.tryRun(['domstate', '--reason', dom], { signal })) ?? '(booted)');
    if (!restored) ctx.log?.warn({ vm: vm.name }, 'saved state discarded: libvirt booted the VM instead of restoring it');
    // the restored domain runs the XML saved in its state: its record takes this start's spec and ports
    await setMetadata(
      ctx,
      dom,
      { project: project.name, projectDir: project.dir, vm: vm.name, spec: vm, diskImage, ports: alloc.record, accel },
      signal,
    );
  }
  const c = await ctx.capabilities(signal);
  if (user && !c.passt) {
    try {
      await addSlirpForwards(ctx, dom, forwards, signal);
    } catch (err) {
      await virsh.tryRun(['destroy', dom]);
      throw err;
    }
  }
  if (template && cloned) {
    try {
      await makeIdentityOwn(ctx, project, pd, vm, template, alloc.sshPort, null, signal);
    } catch (err) {
      // never leave a guest with the template's identity running
      await virsh.tryRun(['destroy', dom]);
      await abandonClone(ctx, pd, vm, (err as Error).message);
      throw err;
    }
  }
  const ports = { ...alloc.record };
  if (vm.graphics === 'vnc' || vm.graphics === 'spice') {
    // libvirt picked the display's port (autoport): record it where observation finds ports
    const port = await graphicsPort(ctx, dom, signal);
    if (port !== null) {
      ports[vm.graphics] = `127.0.0.1:${port}`;
      await writeJsonAtomic(f('ports'), ports);
      const live = await metadataOf(ctx, dom, false, signal);
      if (live) await setMetadata(ctx, dom, { ...live, ports }, signal);
    }
  }
  const { pid } = await qemuPid(ctx, dom, null);
  ctx.log?.debug({ vm: vm.name, pid, accel, uri: ctx.uri, restored }, 'libvirt domain started');
  return {
    pid: pid ?? 0,
    accel,
    sshPort: user ? alloc.sshPort : vm.ssh.port,
    ports,
    ...(restored || cloned ? { restored: true } : {}),
  };
}

/** The port of the running domain's <graphics> (VNC/SPICE), null when it has none. */
async function graphicsPort(ctx: LibvirtContext, dom: string, signal?: AbortSignal): Promise<number | null> {
  const xml = await ctx.virsh.run(['dumpxml', dom], { signal });
  const root = create(xml).root().node as unknown as Element;
  const devices = [...root.children].find((c) => c.nodeName === 'devices');
  const g = devices ? [...devices.children].find((c) => c.nodeName === 'graphics') : undefined;
  const port = Number(g?.getAttribute('port'));
  return Number.isInteger(port) && port > 0 ? port : null;
}

/** The QEMU netdev id of the domain's user NIC: "host" + its device alias (libvirt's naming). */
async function userNetdev(ctx: LibvirtContext, dom: string, signal?: AbortSignal): Promise<string> {
  const xml = await ctx.virsh.run(['dumpxml', dom], { signal });
  const root = create(xml).root().node as unknown as Element;
  const devices = [...root.children].find((c) => c.nodeName === 'devices');
  const nic = devices ? [...devices.children].find((c) => c.nodeName === 'interface' && c.getAttribute('type') === 'user') : undefined;
  const alias = nic ? [...nic.children].find((c) => c.nodeName === 'alias')?.getAttribute('name') : null;
  return `host${alias ?? 'net0'}`;
}

async function addSlirpForwards(ctx: LibvirtContext, dom: string, forwards: readonly Forward[], signal?: AbortSignal): Promise<void> {
  const netdev = await userNetdev(ctx, dom, signal);
  for (const fw of forwards) {
    const cmd = `hostfwd_add ${netdev} ${fw.protocol}:${fw.hostAddress}:${fw.hostPort}-:${fw.guestPort}`;
    const out = await ctx.virsh.run(['qemu-monitor-command', dom, '--hmp', cmd], { signal });
    // HMP reports failure as text, with success status
    if (out.trim() !== '') throw new BackendError('PortForwardFailed', `${dom}: ${cmd}: ${out.trim()}`);
  }
}
