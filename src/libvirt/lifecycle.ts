/**
 * The libvirt domain's lifecycle after start: stop (ACPI shutdown, then graceful and hard
 * destroy), suspend/resume, undefine.
 */
import type { StopOptions } from '../../schemas/ports.js';
import type { Project } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import { domainName } from './names.js';
import { abortIf, ACTIVE, row, type LibvirtContext } from './context.js';

async function waitInactive(ctx: LibvirtContext, dom: string, ms: number, signal?: AbortSignal): Promise<boolean> {
  const { clock } = ctx;
  const until = clock.now() + ms;
  for (;;) {
    const r = await row(ctx, dom, signal);
    if (!r || !ACTIVE.has(r.state)) return true;
    if (clock.now() >= until) return false;
    await clock.sleep(Math.min(250, Math.max(1, until - clock.now())), signal);
  }
}

export async function stop(ctx: LibvirtContext, project: Project, name: string, o: StopOptions, signal?: AbortSignal): Promise<void> {
  abortIf(signal);
  const dom = domainName(project, name);
  const r = await row(ctx, dom, signal);
  if (!r || !ACTIVE.has(r.state)) return;
  let delivered = true;
  if (r.state === 'paused') delivered = false;
  else {
    const sent = await ctx.virsh.tryRun(['shutdown', dom, '--mode', 'acpi'], { signal });
    if (sent === null) delivered = false;
  }
  if (!(await waitInactive(ctx, dom, delivered ? o.timeout * 1000 : 0, signal))) {
    ctx.log?.info({ vm: name }, `did not power off within ${o.timeout} s: destroying it gracefully (SIGTERM)`);
    await ctx.virsh.tryRun(['destroy', dom, '--graceful'], { signal });
    if (!(await waitInactive(ctx, dom, ctx.termGraceMs ?? 10000, signal))) {
      ctx.log?.warn({ vm: name }, 'still running after SIGTERM: destroying it');
      await ctx.virsh.tryRun(['destroy', dom], { signal });
      if (!(await waitInactive(ctx, dom, 5000, signal)))
        throw new BackendError('QemuStopFailed', `${name}: domain ${dom} survived virsh destroy`);
    }
  }
}

export async function domainCommand(
  ctx: LibvirtContext,
  project: Project,
  name: string,
  cmd: 'suspend' | 'resume',
  signal?: AbortSignal,
): Promise<void> {
  abortIf(signal);
  const dom = domainName(project, name);
  const r = await row(ctx, dom, signal);
  if (!r || !ACTIVE.has(r.state)) throw new BackendError('VmNotRunning', `${name}: is not running`);
  if (cmd === 'suspend' && r.state === 'paused') return;
  if (cmd === 'resume' && r.state !== 'paused') return;
  await ctx.virsh.run([cmd, dom], { signal });
}

export async function undefine(ctx: LibvirtContext, dom: string, nvram: 'delete' | 'keep', signal?: AbortSignal): Promise<void> {
  if ((await row(ctx, dom, signal)) === null) return;
  await ctx.virsh.run(['undefine', dom, nvram === 'delete' ? '--nvram' : '--keep-nvram', '--managed-save', '--snapshots-metadata'], {
    signal,
  });
}
