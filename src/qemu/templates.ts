/**
 * Warm templates (issue 15 §2, docs/warm.md): the state of a VM right after the first boot of a
 * fresh disk reached Ready (cloud-init done, no provision step run yet), kept under
 * `<state>/images/templates/<key>/` so that a new VM with the same key starts from it instead of
 * booting (src/qemu/clone.ts):
 *   disk.qcow2     the VM's overlay as it was, copied while the guest was paused after its state was
 *                  migrated out (so disk and memory agree), then made read-only; backed by the base image
 *   state.bin      RAM and device state (QEMU's migration stream, as `stop --save` writes it)
 *   efivars.fd     a UEFI guest's variable store as it was (read-only; each clone gets a copy)
 *   template.json  what it is: key, image, QEMU version, argv, the guest's identity to replace
 *   id_ed25519     the login key its guest authorizes (when tend generated the VM's key)
 * The source VM is paused for the capture (~3 s for 1 GiB under TCG) and runs on afterwards.
 */
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Project, VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { readJson, writeJsonAtomic, FILE_MODE } from '../state/atomic.js';
import { TEMPLATE_FILES, socketPath, templateDir, templatesDir, vmFile } from '../state/paths.js';
import { overlayUsers } from '../images/store.js';
import { withStoreLock } from '../images/lock.js';
import { validateTemplatePending, validateTemplateRecord } from '../state/validators.generated.js';
import { readPin } from '../ssh/known-hosts.js';
import { sshUser } from '../ssh/user.js';
import { hostnameOf } from '../seed/cloud-config.js';
import { readInstanceId } from '../state/instance-id.js';
import type { BaseImage } from '../images/qemu-img.js';
import { readRecord, recordPath } from '../provision/record.js';
import { QmpClient } from './qmp.js';
import { builtArgv } from './save.js';
import { qemuVersion, shellQuote } from './saved-state.js';
import { cloneIneligible, templateKey } from './template-key.js';
import { liveQemu, pdir, type QemuContext } from './context.js';
import { validateApplied, type AppliedRecord } from './observe.js';
import type { Logger } from '../log.js';
import type { Clock } from '../../schemas/ports.js';
import { wantsProjectNet } from '../net/project-net.js';

export interface TemplateRecord {
  key: string;
  /** ms since epoch */
  createdAt: number;
  /** the VM it was taken from */
  from: { project: string; vm: string };
  /** the base image its disk is backed by */
  image: BaseImage & { id: string };
  qemuVersion: string;
  /** the source's QEMU argv (compared through portableArgv) */
  argv: string[];
  stateBytes: number;
  /** the source guest's identity, which a clone replaces */
  instanceId: string;
  hostname: string;
  user: string;
  /** "TYPE BASE64" host keys the source guest presented (pinned) */
  hostKeys: string[];
  /** the guest boot cloud-init was seen done in (a clone is still in it) */
  bootId: string | null;
  /** the template folder holds the login key its guest authorizes */
  loginKey: boolean;
  /**
   * A libvirt domain's template (src/libvirt/templates.ts; `argv` is then empty): the connection,
   * the domain's live migratable XML (the basis of a clone's save image, src/libvirt/clone-xml.ts)
   * and its defined XML with per-clone values masked (portableDomainXml)
   */
  libvirt?: { uri: string; xml: string; portable: string };
}

export async function readTemplate(root: string, key: string): Promise<TemplateRecord | undefined> {
  return readJson<TemplateRecord>(join(templateDir(root, key), TEMPLATE_FILES.record), validateTemplateRecord);
}

/** The image a fresh disk was made over, when its first Ready may still become a template. */
export async function readTemplatePending(pd: string, vm: string): Promise<(BaseImage & { id: string }) | undefined> {
  return readJson<BaseImage & { id: string }>(vmFile(pd, vm, 'templatePending'), validateTemplatePending);
}

export interface MigrateInfo {
  status?: string;
  'error-desc'?: string;
}

/** A libvirt connection's part of its templates' keys (template-key.ts). */
export function libvirtTemplateScope(uri: string): string {
  return `libvirt ${uri}`;
}

/** A template about to be kept: the VM as applied, its key and the base image of its disk. */
export interface TemplateToKeep {
  vm: VmSpec;
  key: string;
  image: BaseImage & { id: string };
}

/**
 * Whether the VM just observed Ready keeps a template (both backends): the first Ready of a fresh
 * disk of a `warm` VM, eligible, with no provision step run and no template of its key yet.
 * Consumes the disk's one chance (`template-pending`).
 */
export async function templateToKeep(
  host: { stateRoot: string; log: Logger | undefined },
  pd: string,
  project: Project,
  name: string,
  scope: string | null,
): Promise<TemplateToKeep | null> {
  const pending = await readTemplatePending(pd, name).catch(() => undefined);
  if (!pending) return null;
  // one chance: the first Ready of this disk (later, steps or users may have changed it)
  await rm(vmFile(pd, name, 'templatePending'), { force: true });
  const applied = await readJson<AppliedRecord>(vmFile(pd, name, 'applied'), validateApplied).catch(() => undefined);
  const vm = applied?.spec;
  if (!vm?.warm) return null;
  const projectNic = wantsProjectNet(project);
  // a template's memory must never know a volume (its mounts, its page cache): a clone gets its
  // own plugged in after the restore (src/qemu/hotplug.ts); a VM with volumes makes none
  const why =
    cloneIneligible(vm, { libvirt: scope !== null, projectNic }) ??
    (vm.volumes.length > 0 ? 'it has volumes or host folders, which a template never holds (a VM without them makes it)' : null);
  if (why) {
    host.log?.info({ vm: name }, `no warm template kept: ${why}`);
    return null;
  }
  const key = templateKey(vm, pending.id, projectNic, scope);
  if (await readTemplate(host.stateRoot, key)) return null;
  const steps = await readRecord(recordPath(pd, name));
  if (steps && steps.steps.length > 0) return null;
  return { vm, key, image: pending };
}

/**
 * Called when the VM was observed Ready: on the first Ready of a fresh disk of a `warm` VM, keep
 * a template of it unless one with its key exists. Never throws: a template that could not be
 * made is a warning (the VM runs on as before). Returns the key when a template was made.
 */
export async function maybeKeepTemplate(ctx: QemuContext, project: Project, name: string): Promise<string | null> {
  const want = await templateToKeep(ctx, pdir(ctx, project), project, name, null);
  if (!want) return null;
  try {
    await captureTemplate(ctx, project, want);
    return want.key;
  } catch (err) {
    ctx.log?.warn({ vm: name }, `no warm template kept: ${(err as Error).message}`);
    return null;
  }
}

/** What a backend's capture (`freeze`) hands back for the record. */
export interface FrozenState {
  qemuVersion: string;
  argv: string[];
  libvirt?: TemplateRecord['libvirt'];
}

/**
 * Keep a template of the running `vm` under `key` (both backends): `freeze(tmp)` pauses the guest,
 * writes its memory and device state to `tmp/state.bin`, copies its disk overlay (and a UEFI
 * guest's variable store) into `tmp` while the disks are released, and lets the guest run on; the
 * rest (read-only files, login key, record, the folder appearing whole) is the same for both.
 */
export async function keepTemplate(
  host: { stateRoot: string; clock: Clock; log: Logger | undefined },
  pd: string,
  project: Project,
  want: TemplateToKeep,
  freeze: (tmp: string) => Promise<FrozenState>,
): Promise<void> {
  const { vm, key } = want;
  const pin = await readPin(vmFile(pd, vm.name, 'knownHosts'));
  if (!pin) throw new Error('its SSH host key is not pinned yet');
  const bootId = await readFile(vmFile(pd, vm.name, 'cloudInitDone'), 'utf8').then(
    (t) => t.trim() || null,
    () => null,
  );
  const root = templatesDir(host.stateRoot);
  await mkdir(root, { recursive: true, mode: 0o700 });
  // the capture folder exists only under the template's lock: a folder `image prune` finds while
  // holding that lock is one a killed capture left (pruneCaptureLeftovers)
  const paused = await withTemplateLock(host.stateRoot, key, () => capture(host, pd, project, want, pin.keys, bootId, freeze));
  host.log?.info(
    { vm: vm.name },
    `warm template ${key} kept (guest paused ${(paused / 1000).toFixed(1)} s): a new VM with the same image, cloud-init and hardware starts from it`,
  );
}

/** The capture itself (keepTemplate, under the template's lock); returns how long the guest was paused. */
async function capture(
  host: { stateRoot: string; clock: Clock },
  pd: string,
  project: Project,
  want: TemplateToKeep,
  hostKeys: string[],
  bootId: string | null,
  freeze: (tmp: string) => Promise<FrozenState>,
): Promise<number> {
  const { vm, key, image } = want;
  const tmp = join(templatesDir(host.stateRoot), `${CAPTURE_PREFIX}${key}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 });
  const t0 = host.clock.now();
  let paused = 0;
  try {
    const frozen = await freeze(tmp);
    paused = host.clock.now() - t0;
    await chmod(join(tmp, TEMPLATE_FILES.disk), 0o400);
    if (vm.firmware !== 'bios') await chmod(join(tmp, TEMPLATE_FILES.efiVars), 0o400);
    const loginKey = vm.ssh.privateKey === null;
    if (loginKey) {
      await copyFile(vmFile(pd, vm.name, 'privateKey'), join(tmp, TEMPLATE_FILES.privateKey));
      await copyFile(vmFile(pd, vm.name, 'publicKey'), join(tmp, `${TEMPLATE_FILES.privateKey}.pub`));
      await chmod(join(tmp, TEMPLATE_FILES.privateKey), FILE_MODE);
    }
    const rec: TemplateRecord = {
      key,
      createdAt: host.clock.now(),
      from: { project: project.name, vm: vm.name },
      image,
      qemuVersion: frozen.qemuVersion,
      argv: frozen.argv,
      stateBytes: (await stat(join(tmp, TEMPLATE_FILES.state))).size,
      instanceId: await readInstanceId(pd, vm.name),
      hostname: hostnameOf(vm),
      user: sshUser(vm),
      hostKeys,
      bootId,
      loginKey,
      ...(frozen.libvirt ? { libvirt: frozen.libvirt } : {}),
    };
    await writeJsonAtomic(join(tmp, TEMPLATE_FILES.record), rec);
    // whole or not at all: a template folder appears only complete
    await rename(tmp, templateDir(host.stateRoot, key)).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') return; // another VM kept the same template meanwhile
      throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return paused;
}

async function captureTemplate(ctx: QemuContext, project: Project, want: TemplateToKeep): Promise<void> {
  const { vm } = want;
  const pd = pdir(ctx, project);
  const live = await liveQemu(ctx, vmFile(pd, vm.name, 'pid'), vm.name);
  if (!live) throw new Error('its QEMU is not running');
  const version = await qemuVersion(ctx.binary, ctx.env);
  await keepTemplate(ctx, pd, project, want, async (tmp) => {
    const qmp = await QmpClient.connect(socketPath(pd, vm.name, 'qmp', ctx.env), { timeoutMs: 2000 });
    try {
      await qmp.execute('stop', undefined, { timeoutMs: 5000 });
      try {
        await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(join(tmp, TEMPLATE_FILES.state))}` }, { timeoutMs: 10_000 });
        for (;;) {
          const info = await qmp.execute<MigrateInfo>('query-migrate', undefined, { timeoutMs: 5000 });
          if (info.status === 'completed') break;
          if (info.status === 'failed' || info.status === 'cancelled')
            throw new BackendError('SaveFailed', `QEMU could not save its state (${info['error-desc'] ?? info.status})`);
          await ctx.clock.sleep(50);
        }
        // a completed migration flushed and released the disks: the overlay (and a UEFI guest's
        // variable store, which QEMU writes too) now match the state
        await copyFile(vmFile(pd, vm.name, 'disk'), join(tmp, TEMPLATE_FILES.disk));
        if (vm.firmware !== 'bios') await copyFile(vmFile(pd, vm.name, 'efiVars'), join(tmp, TEMPLATE_FILES.efiVars));
      } finally {
        // the source runs on (cont after a completed migration takes its disks back)
        await qmp.execute('cont', undefined, { timeoutMs: 10_000 });
      }
    } finally {
      qmp.close();
    }
    return { qemuVersion: version, argv: builtArgv(live.argv) };
  });
}

/** Capture folders are `.tmp-KEY-RANDOM` in the templates folder (dot names: never listed as templates). */
const CAPTURE_PREFIX = '.tmp-';

/** A template as `tend image templates` shows it. */
export interface TemplateInfo {
  key: string;
  path: string;
  createdAt: number;
  from: { project: string; vm: string };
  image: string;
  /** bytes on the host: frozen disk + memory state */
  bytes: number;
  /** VM disks backed by it */
  usedBy: string[];
}

async function sizeOf(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, f)).catch(() => null);
    if (s?.isFile()) n += s.blocks * 512;
  }
  return n;
}

export async function listTemplates(root: string): Promise<TemplateInfo[]> {
  const out: TemplateInfo[] = [];
  for (const key of (await readdir(templatesDir(root)).catch(() => [] as string[])).sort()) {
    if (key.startsWith('.')) continue;
    const rec = await readTemplate(root, key).catch(() => undefined);
    const dir = templateDir(root, key);
    const frozen = join(dir, TEMPLATE_FILES.disk);
    out.push({
      key,
      path: dir,
      createdAt: rec?.createdAt ?? 0,
      from: rec?.from ?? { project: '?', vm: '?' },
      image: rec?.image.path ?? '(damaged template record)',
      bytes: await sizeOf(dir),
      usedBy: await overlayUsers(root, frozen, { templates: false }),
    });
  }
  return out;
}

/**
 * Run `fn` holding the lock of template `key`, which a clone's disk creation (src/qemu/clone.ts
 * prepareClone) and `image prune` share: a prune never sees "no user" while a clone's overlay on
 * the template is being made. proper-lockfile (src/images/lock.ts) on `.KEY` in the templates
 * folder (its `.KEY.lock` folder is skipped by listings, as every dot name is).
 */
export function withTemplateLock<T>(root: string, key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return withStoreLock(join(templatesDir(root), `.${key}`), fn, signal);
}

/** What a capture that was killed left: its folder and the bytes it holds. */
export interface CaptureLeftover {
  path: string;
  bytes: number;
}

/**
 * Remove the folders of captures that did not finish (tend killed mid-capture leaves a frozen
 * disk and memory state, hundreds of MiB): each under its template's lock, which a running capture
 * holds from before it makes its folder until it removed it, so a capture under way is waited for,
 * never cut short.
 */
export async function pruneCaptureLeftovers(root: string): Promise<CaptureLeftover[]> {
  const removed: CaptureLeftover[] = [];
  for (const name of (await readdir(templatesDir(root)).catch(() => [] as string[])).sort()) {
    const m = /^\.tmp-([0-9a-f]+)-[0-9a-f]+$/.exec(name);
    if (!m) continue;
    const path = join(templatesDir(root), name);
    const gone = await withTemplateLock(root, m[1]!, async () => {
      const s = await stat(path).catch(() => null);
      if (!s?.isDirectory()) return null; // its capture finished (or failed) while we waited
      const bytes = await sizeOf(path);
      await rm(path, { recursive: true, force: true });
      return { path, bytes };
    });
    if (gone) removed.push(gone);
  }
  return removed;
}

/** Remove templates no VM disk is backed by; returns what was removed. */
export async function pruneTemplates(root: string): Promise<TemplateInfo[]> {
  const removed: TemplateInfo[] = [];
  for (const t of await listTemplates(root)) {
    if (t.usedBy.length > 0) continue;
    // asked again under the template's lock: a clone may have made its disk on it meanwhile
    const gone = await withTemplateLock(root, t.key, async () => {
      if ((await overlayUsers(root, join(t.path, TEMPLATE_FILES.disk), { templates: false })).length > 0) return false;
      await rm(t.path, { recursive: true, force: true });
      return true;
    });
    if (gone) removed.push(t);
  }
  return removed;
}
