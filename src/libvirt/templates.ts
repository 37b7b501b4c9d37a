/**
 * Warm templates of libvirt domains (issue 15 §2, docs/warm.md): the first Ready of a fresh disk
 * of a `warm` VM on a local connection keeps a template, in the same folder and format as the
 * QEMU backend's (src/qemu/templates.ts): the frozen disk overlay, QEMU's migration stream as
 * `state.bin`, the record, plus the domain's live migratable XML (a clone's save image is made
 * from it, src/libvirt/clone.ts).
 *
 * Capture, as on QEMU: QMP `stop`, `migrate` to a unix socket tend listens on (libvirt's QEMU
 * runs under a seccomp sandbox that forbids exec:, and QEMU 7.2 has no file:), the overlay copied
 * while the completed migration has the disks released, `cont`: the guest is paused for seconds
 * and runs on, with the same QEMU. The commands go through `virsh qemu-monitor-command` (libvirt
 * owns the monitor): libvirt sees a pause and a resume. Not `virsh save`: it ends the domain's
 * QEMU (the source would need a restore of its own and its port forwards again, and `tend watch`
 * would see it stop), and its file's header names the source domain, which `virsh restore --xml`
 * cannot change (docs/decisions.md).
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readFile } from 'node:fs/promises';
import type { Project } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { TEMPLATE_FILES, vmFile } from '../state/paths.js';
import { exists } from '../state/atomic.js';
import { keepTemplate, libvirtTemplateScope, templateToKeep, type MigrateInfo, type TemplateToKeep } from '../qemu/templates.js';
import { domainName } from './names.js';
import { pdir, type LibvirtContext } from './context.js';
import { virshMonitor } from './snapshots.js';
import { portableDomainXml } from './clone-xml.js';

/**
 * Called when the VM was observed Ready (backend.ts markReady): keeps a template on the first Ready
 * of a fresh disk of a `warm` VM. Never throws: a template that could not be made is a warning.
 */
export async function maybeKeepLibvirtTemplate(ctx: LibvirtContext, project: Project, name: string): Promise<string | null> {
  const pd = pdir(ctx, project);
  if (!ctx.local) {
    const pending = vmFile(pd, name, 'templatePending');
    if (await exists(pending)) {
      await rm(pending, { force: true });
      ctx.log?.info({ vm: name }, 'no warm template kept: not on a remote libvirt host yet (its disk is a file of that host)');
    }
    return null;
  }
  const want = await templateToKeep(ctx, pd, project, name, libvirtTemplateScope(ctx.uri));
  if (!want) return null;
  try {
    await captureLibvirtTemplate(ctx, pd, project, want);
    return want.key;
  } catch (err) {
    ctx.log?.warn({ vm: name }, `no warm template kept: ${(err as Error).message}`);
    return null;
  }
}

/** Accept one connection on a fresh unix socket and write what it sends to `file`. */
async function streamSink(file: string): Promise<{ path: string; done: Promise<void>; close: () => Promise<void> }> {
  // a short folder of its own: unix socket paths have 108 bytes (a template folder may be deeper)
  const dir = await mkdtemp(join(tmpdir(), 'tend-tpl-'));
  const path = join(dir, 'm.sock');
  let conn: Socket | null = null;
  const server = createServer();
  const done = new Promise<void>((resolve, reject) => {
    server.once('connection', (c) => {
      conn = c;
      server.close();
      pipeline(c, createWriteStream(file, { mode: 0o600 })).then(resolve, reject);
    });
    server.once('error', reject);
  });
  done.catch(() => undefined);
  await new Promise<void>((resolve, reject) => server.listen(path, resolve).once('error', reject));
  return {
    path,
    done,
    close: async () => {
      server.close();
      (conn as Socket | null)?.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function captureLibvirtTemplate(ctx: LibvirtContext, pd: string, project: Project, want: TemplateToKeep): Promise<void> {
  const { vm } = want;
  const dom = domainName(project, vm.name);
  const hypervisor = (await ctx.capabilities()).hypervisor;
  if (!hypervisor) throw new Error("libvirt does not say its QEMU's version");
  const defined = await readFile(vmFile(pd, vm.name, 'domainXml'), 'utf8').catch(() => null);
  if (defined === null) throw new Error('tend has no record of how its domain was defined');
  // what the QEMU runs with (devices, addresses, aliases): a clone's save image carries it
  const live = await ctx.virsh.run(['dumpxml', '--migratable', dom]);
  const mon = virshMonitor(ctx, dom);
  await keepTemplate(ctx, pd, project, want, async (tmp) => {
    const sink = await streamSink(join(tmp, TEMPLATE_FILES.state));
    try {
      await mon.execute('stop');
      try {
        await mon.execute('migrate', { uri: `unix:${sink.path}` });
        for (;;) {
          const info = await mon.execute<MigrateInfo>('query-migrate');
          if (info.status === 'completed') break;
          if (info.status === 'failed' || info.status === 'cancelled')
            throw new BackendError('SaveFailed', `QEMU could not save its state (${info['error-desc'] ?? info.status})`);
          await ctx.clock.sleep(50);
        }
        await sink.done;
        // a completed migration flushed and released the disks: the overlay (and the NVRAM) match the state
        await copyFile(vmFile(pd, vm.name, 'disk'), join(tmp, TEMPLATE_FILES.disk));
        if (vm.firmware !== 'bios') await copyFile(vmFile(pd, vm.name, 'efiVars'), join(tmp, TEMPLATE_FILES.efiVars));
      } finally {
        // the source runs on (cont after a completed migration takes its disks back)
        await mon.execute('cont');
      }
    } finally {
      await sink.close();
    }
    return { qemuVersion: hypervisor, argv: [], libvirt: { uri: ctx.uri, xml: live, portable: portableDomainXml(defined) } };
  });
}
