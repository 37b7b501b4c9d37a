/**
 * The QEMU backend's prepare: the VM's folder, instance-id, SSH key, disk overlay over its base
 * image (grown when stopped), named volumes, UEFI variable store and cloud-init seed. Idempotent:
 * prepare twice changes nothing the second time.
 */
import { chmod, copyFile, readFile, rm } from 'node:fs/promises';
import type { PrepareOptions } from '../../schemas/ports.js';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { resolveImage } from '../images/resolve.js';
import { DEFAULT_VOLUME_GIB, createOverlay, createVolume, resizeImage } from '../images/qemu-img.js';
import { writeSeed } from '../seed/seed.js';
import { hostnameOf } from '../seed/cloud-config.js';
import { readHostKey, writeHostKey } from '../ssh/host-key.js';
import { sshUser } from '../ssh/user.js';
import { ensureDir, exists, FILE_MODE, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { FILES, vmDir, vmFile, vmsDir, volumePath, volumesDir } from '../state/paths.js';
import { newInstanceId, readInstanceId } from '../state/instance-id.js';
import { clearRecord } from '../provision/record.js';
import { findOvmf } from './firmware.js';
import { discardSaved, savedPaths } from './saved-state.js';
import type { AppliedRecord } from './observe.js';
import { ensureProjectNet } from './project-net.js';
import { tapMac } from '../net/mac.js';
import { hasTapMgmt } from './template-key.js';
import { prepareClone } from './clone.js';
import { abortIf, corruptNote, liveQemu, pdir, readApplied, type QemuContext } from './context.js';

/** Default size of a named volume the project declares without one. */

export async function prepare(ctx: QemuContext, project: Project, vm: VmSpec, o: PrepareOptions, signal?: AbortSignal): Promise<void> {
  abortIf(signal);
  const pd = pdir(ctx, project);
  const dir = vmDir(pd, vm.name);
  await ensureDir(pd);
  await ensureDir(vmsDir(pd));
  await ensureDir(dir);
  const f = (k: keyof typeof FILES): string => vmFile(pd, vm.name, k);
  const live = await liveQemu(ctx, f('pid'), vm.name);

  if (o.recreateDisk) {
    if (live) throw new BackendError('VmRunning', `${vm.name}: cannot replace the disk of a running VM (stop it first)`);
    await rm(f('disk'), { force: true });
    await rm(f('clone'), { force: true });
    await rm(f('templatePending'), { force: true });
    await rm(f('cloudInitDone'), { force: true });
    await clearRecord(pd, vm.name);
    await rm(f('instanceId'), { force: true });
    await rm(f('efiVars'), { force: true });
    if (await exists(savedPaths(pd, vm.name).record)) o.onProgress?.(`${vm.name}: its saved state is discarded with its disk`);
    await discardSaved(pd, vm.name);
  }

  // instance-id: created once, kept for the disk's life
  let instanceId = await readInstanceId(pd, vm.name, corruptNote(ctx));
  if (!instanceId) {
    instanceId = newInstanceId();
    await writeFileAtomic(f('instanceId'), instanceId + '\n');
  }

  let publicKey: string;
  if (vm.ssh.privateKey === null) {
    // ssh2 (keys.ts) is loaded only when a VM is prepared: a converged `tend up` never pays for it
    const { ensureKeypair } = await import('../ssh/keys.js');
    publicKey = (await ensureKeypair(dir)).publicKey;
  } else {
    const pub = await readFile(`${vm.ssh.privateKey}.pub`, 'utf8').catch(() => '');
    const { publicKeyOf } = await import('../ssh/keys.js');
    publicKey = pub.trim() || publicKeyOf(await readFile(vm.ssh.privateKey, 'utf8'), `tend@${vm.name}`);
  }
  abortIf(signal);

  const image = await resolveImage(ctx.stateRoot, vm.image, {
    signal,
    onProgress: o.onProgress,
    onDownload: o.onDownload,
    diskGiB: vm.disk,
  });
  abortIf(signal);
  const previous = await readApplied(ctx, project, vm.name);
  let diskImage = previous?.diskImage ?? null;
  if (!(await exists(f('disk')))) {
    await rm(f('templatePending'), { force: true });
    await rm(f('clone'), { force: true });
    await rm(f('hostKey'), { force: true });
    // a warm VM whose key has a template starts from it (src/qemu/clone.ts)
    if (!(await prepareClone(ctx, project, pd, vm, image.id, o.onProgress))) {
      o.onProgress?.(`creating disk over ${image.path}`);
      await createOverlay(image, f('disk'), vm.disk);
      // only with a fresh disk: a disk that booted keeps the host keys its guest has (and its seed its bytes)
      if (vm.cloudInit !== null && !vm.cloudInit.userData) await writeHostKey(f('hostKey'), hostnameOf(vm));
      // its first Ready may become a warm template (src/qemu/templates.ts)
      if (vm.warm)
        await writeJsonAtomic(f('templatePending'), {
          path: image.path,
          format: image.format,
          id: image.id,
          virtualSize: image.virtualSize,
        });
    }
    await clearRecord(pd, vm.name);
    diskImage = image.id;
  } else if (vm.disk !== null && !live) {
    // a running QEMU holds the disk's write lock: growth happens at the next prepare after a stop
    if (await resizeImage(f('disk'), vm.disk)) o.onProgress?.(`disk grown to ${vm.disk} GiB`);
  }

  for (const v of vm.volumes) {
    if (v.kind !== 'named' || ctx.runsElsewhere) continue;
    const p = volumePath(pd, v.name);
    if (await exists(p)) continue;
    await ensureDir(volumesDir(pd));
    await createVolume(p, project.volumes[v.name]?.size ?? DEFAULT_VOLUME_GIB);
  }

  if (vm.firmware !== 'bios' && !ctx.runsElsewhere && !(await exists(f('efiVars')))) {
    const fw = await findOvmf(vm.firmware);
    if (!fw) throw new BackendError('FirmwareMissing', `${vm.name}: firmware ${vm.firmware} needs OVMF (apt-get install ovmf)`);
    await copyFile(fw.varsTemplate, f('efiVars'));
    await chmod(f('efiVars'), FILE_MODE); // the template's mode is world-readable
  }

  if (vm.cloudInit !== null) {
    const net = vm.network.mode === 'user' ? await ensureProjectNet(project, pd, vm.name) : null;
    const tapMgmtMac = hasTapMgmt(vm) ? tapMac(pd, vm.name) : null;
    const hostKey = await readHostKey(f('hostKey'));
    await writeSeed(vm, { isoPath: f('seed'), instanceId, publicKey, user: sshUser(vm), net, tapMgmtMac, hostKey });
  } else {
    await rm(f('seed'), { force: true });
  }
  await writeJsonAtomic(f('applied'), { spec: vm, diskImage } satisfies AppliedRecord);
}
