/**
 * Defining a VM's libvirt domain: its accelerator, its domain XML (domain-xml.ts) over the files
 * the QEMU backend prepares, and the tend <metadata> it carries. prepare = the QEMU backend's
 * prepare, then define (or, for a running domain, only its metadata).
 */
import { join } from 'node:path';
import type { PrepareOptions } from '../../schemas/ports.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { readJson, writeFileAtomic } from '../state/atomic.js';
import { validateAppliedRecord } from '../state/validators.generated.js';
import { CACHE_FILES, FILES, cacheRoot, socketPath, vmDir, vmFile, volumePath } from '../state/paths.js';
import { decideAccel } from '../qemu/accel.js';
import { findOvmf } from '../qemu/firmware.js';
import type { PortRecord } from '../qemu/ports.js';
import { ensureProjectNet } from '../qemu/project-net.js';
import { hostFolderShares } from '../qemu/volumes.js';
import { tapMac } from '../net/mac.js';
import { writeBackendRecord } from '../backend/record.js';
import { buildDomainXml, type Forward } from './domain-xml.js';
import { metadataForVirsh, TEND_NS, type TendMetadata } from './metadata.js';
import { domainName, remoteVolumeName } from './names.js';
import { isSystemUri } from './connect.js';
import { abortIf, ACTIVE, metadataOf, pdir, row, type LibvirtContext } from './context.js';
import { discardManagedSave } from './managed-save.js';
import { prepareRemoteFiles, remotePaths, requireRemoteSupport } from './remote-files.js';

export async function chooseType(ctx: LibvirtContext, vm: VmSpec): Promise<{ type: 'kvm' | 'qemu'; accel: 'kvm' | 'tcg' }> {
  if (!ctx.local) {
    // another host: its accelerator is its own; `auto` takes KVM when that libvirt offers it
    // (tend cannot run its boot-sector probe there: a host whose KVM hangs needs accel: tcg)
    const accel =
      vm.accel === 'auto' ? ((await ctx.virsh.tryRun(['domcapabilities', '--virttype', 'kvm'])) !== null ? 'kvm' : 'tcg') : vm.accel;
    return { type: accel === 'kvm' ? 'kvm' : 'qemu', accel };
  }
  const {
    choice: { accel, reason },
    probed,
  } = await decideAccel(vm.accel, {
    binary: 'qemu-system-x86_64',
    env: ctx.env,
    cacheFile: join(cacheRoot(ctx.env), CACHE_FILES.accel),
  });
  // said once, when found out (the verdict is cached for a day): not at every start
  if (reason) ctx.log?.[probed ? 'info' : 'debug']({ vm: vm.name, accel }, reason);
  return { type: accel === 'kvm' ? 'kvm' : 'qemu', accel };
}

export async function define(
  ctx: LibvirtContext,
  project: Project,
  vm: VmSpec,
  o: { ports: PortRecord; forwards: Forward[]; accel: 'kvm' | 'tcg'; diskImage: string | null },
  signal?: AbortSignal,
): Promise<string> {
  const { env, virsh } = ctx;
  const pd = pdir(ctx, project);
  const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
  const c = await ctx.capabilities(signal);
  let firmware: { code: string; varsTemplate: string } | 'host' | null = null;
  if (vm.firmware !== 'bios' && !ctx.local) firmware = 'host';
  else if (vm.firmware !== 'bios') {
    const fw = await findOvmf(vm.firmware);
    if (!fw) throw new BackendError('FirmwareMissing', `${vm.name}: firmware ${vm.firmware} needs OVMF (apt-get install ovmf)`);
    firmware = fw;
  }
  const projectNet = vm.network.mode === 'user' ? await ensureProjectNet(project, pd, vm.name) : null;
  const dom = domainName(project, vm.name);
  const uuid = await virsh.tryRun(['domuuid', dom], { signal });
  // a remote host's domain names the volumes in its pool (remote-files.ts), and its serial
  // console is a pty whose log virtlogd writes into the pool
  const poolDir = ctx.local ? null : await ctx.poolDir(signal);
  const remote = poolDir === null ? null : remotePaths(poolDir, dom, vm.cloudInit !== null);
  const volumes: Record<string, string> = {};
  for (const v of vm.volumes) {
    if (v.kind === 'named') volumes[v.name] = poolDir === null ? volumePath(pd, v.name) : `${poolDir}/${remoteVolumeName(project, v.name)}`;
  }
  const xml = buildDomainXml({
    vm,
    domainName: dom,
    uuid,
    type: o.accel === 'kvm' ? 'kvm' : 'qemu',
    metadata: {
      project: project.name,
      projectDir: project.dir,
      vm: vm.name,
      spec: vm,
      diskImage: o.diskImage,
      ports: o.ports,
      accel: o.accel,
    },
    paths: {
      disk: remote ? remote.disk : f('disk'),
      seed: remote ? remote.seed : vm.cloudInit !== null ? f('seed') : null,
      volumes,
      serialSocket: remote ? null : socketPath(pd, vm.name, 'serial', env),
      consoleLog: remote ? remote.consoleLog : f('consoleLog'),
      nvram: vm.firmware !== 'bios' && ctx.local ? f('efiVars') : null,
    },
    firmware,
    userNet: { backend: c.passt ? 'passt' : 'slirp', forwards: o.forwards },
    hostFolders: hostFolderShares(vm, vmDir(pd, vm.name), env).map((s) => ({ tag: s.tag, source: s.source })),
    projectNet,
    tapMac: vm.network.mode === 'tap' ? tapMac(pd, vm.name) : null,
    runAsRoot: isSystemUri(ctx.uri),
  });
  // the XML goes through a file (virsh cannot read a pipe as its FILE); kept for `tend status`
  const xmlPath = f('domainXml');
  await writeFileAtomic(xmlPath, xml);
  await virsh.run(['define', xmlPath], { signal });
  return xml;
}

export async function prepare(ctx: LibvirtContext, project: Project, vm: VmSpec, o: PrepareOptions, signal?: AbortSignal): Promise<void> {
  if (!ctx.local) requireRemoteSupport(vm, ctx.uri);
  abortIf(signal);
  const pd = pdir(ctx, project);
  const dom = domainName(project, vm.name);
  const r = await row(ctx, dom, signal);
  const active = r !== null && ACTIVE.has(r.state);
  if (o.recreateDisk && active) throw new BackendError('VmRunning', `${vm.name}: cannot replace the disk of a running VM (stop it first)`);
  const previous = await metadataOf(ctx, dom, true, signal);
  if (o.recreateDisk && r !== null && /\(saved\)/.test((await ctx.virsh.tryRun(['domstate', '--reason', dom], { signal })) ?? '')) {
    // a state never outlives its disk
    o.onProgress?.(`${vm.name}: its saved state is discarded with its disk`);
    await discardManagedSave(ctx, pd, vm.name, dom, signal);
  }
  // a running QEMU holds the disk's write lock: growth waits for the next prepare after a stop
  await ctx.files.prepare(project, active ? { ...vm, disk: null } : vm, o, signal);
  if (!ctx.local) {
    await prepareRemoteFiles(
      ctx.virsh,
      project,
      dom,
      vm,
      { disk: vmFile(pd, vm.name, 'disk'), seed: vmFile(pd, vm.name, 'seed') },
      {
        recreateDisk: o.recreateDisk === true,
        active,
        env: ctx.env,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(signal ? { signal } : {}),
      },
    );
  }
  await writeBackendRecord(pd, vm.name, { backend: 'libvirt', uri: ctx.uri, domain: dom });
  const diskImage = o.recreateDisk ? null : (previous?.diskImage ?? null);
  const applied = await readJson<{ diskImage?: string | null }>(vmFile(pd, vm.name, 'applied'), validateAppliedRecord);
  const image = applied?.diskImage ?? diskImage;
  if (active) {
    // the running domain keeps its devices; its record (live and persistent) takes the new spec
    const live = await metadataOf(ctx, dom, false, signal);
    await setMetadata(ctx, dom, { ...(live ?? previous ?? emptyMeta(project, vm)), spec: vm, diskImage: image }, signal);
    return;
  }
  const ports = previous?.ports ?? {};
  await define(ctx, project, vm, { ports, forwards: [], accel: previous?.accel ?? 'tcg', diskImage: image }, signal);
}

function emptyMeta(project: Project, vm: VmSpec): TendMetadata {
  return { project: project.name, projectDir: project.dir, vm: vm.name, spec: vm, diskImage: null, ports: {}, accel: 'tcg' };
}

export async function setMetadata(ctx: LibvirtContext, dom: string, m: TendMetadata, signal?: AbortSignal): Promise<void> {
  const active = ACTIVE.has((await row(ctx, dom, signal))?.state ?? '');
  await ctx.virsh.run(
    ['metadata', dom, TEND_NS, '--key', 'tend', '--set', metadataForVirsh(m), ...(active ? ['--live'] : []), '--config'],
    {
      signal,
    },
  );
}
