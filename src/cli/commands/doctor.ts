/** `tend doctor`: check the host (QEMU, qemu-img, which accelerator really works, SSH, state dir). */
import type { DoctorReport, ToolReport } from '../../qemu/doctor.js';
import { resolveStateRoot, type GlobalOptions } from '../context.js';
import type { CliCommand } from '../command.js';
import { EXIT } from '../../../schemas/errors.js';
import { renderDeviceChecks } from '../../qemu/devices.js';
import { renderLibvirtDoctor } from '../../libvirt/doctor.js';

export interface DoctorResult {
  ok: boolean;
  report: DoctorReport;
  /** one per libvirt connection URI in play (src/libvirt/doctor.ts) */
  libvirt?: import('../../libvirt/doctor.js').LibvirtDoctorReport[];
  /** PCI passthrough checks of the devices the project in cwd declares (src/qemu/devices.ts) */
  devices?: import('../../qemu/devices.js').DeviceCheck[];
  /** VMs of the project in cwd built from a bootc image, and what is missing to build their disks */
  bootc?: { vm: string; image: string; missing: string | null }[];
}

export async function doctorCommand(g: GlobalOptions): Promise<DoctorResult> {
  const { doctor } = await import('../../qemu/doctor.js');
  const report = await doctor({ stateRoot: resolveStateRoot(g), env: g.env ?? process.env });
  const devices = await projectDevices(g);
  for (const d of devices) report.problems.push(...d.problems);
  const libvirt = await libvirtChecks(g);
  for (const l of libvirt) report.problems.push(...l.problems);
  const bootc = await projectBootc(g);
  for (const b of bootc) if (b.missing) report.problems.push(`${b.vm}: ${b.missing}`);
  return {
    ok: report.problems.length === 0,
    report,
    libvirt: libvirt.map((l) => l.report),
    ...(devices.length ? { devices } : {}),
    ...(bootc.length ? { bootc } : {}),
  };
}

/** The libvirt URIs in play: the flag's, the project's VMs', else $TEND_LIBVIRT_URI or the default. */
async function libvirtChecks(g: GlobalOptions) {
  const env = g.env ?? process.env;
  const [{ libvirtDoctor }, { wantedBackend }] = await Promise.all([import('../../libvirt/doctor.js'), import('../../backend/select.js')]);
  const uris = new Map<string, boolean>();
  try {
    const { loadFiles } = await import('../context.js');
    const project = (await loadFiles(g)).project;
    for (const vm of project?.vms ?? []) {
      const w = wantedBackend(vm, g.backendFlags ?? {}, env);
      if (w.kind !== 'qemu') uris.set(w.uri, (uris.get(w.uri) ?? false) || w.kind === 'libvirt');
    }
  } catch {
    // no project here: the host alone
  }
  if (uris.size === 0) {
    const w = wantedBackend({}, g.backendFlags ?? {}, env);
    uris.set(w.uri, w.kind === 'libvirt');
  }
  return Promise.all([...uris].map(([uri, required]) => libvirtDoctor(uri, { required, env })));
}

/** For each VM of the project in cwd built from a bootc image: what is missing to build its disk (null: nothing). */
async function projectBootc(g: GlobalOptions): Promise<{ vm: string; image: string; missing: string | null }[]> {
  let vms;
  try {
    const { loadFiles } = await import('../context.js');
    vms = (await loadFiles(g)).project?.vms ?? [];
  } catch {
    return [];
  }
  const { bootcMissing } = await import('../../images/bootc.js');
  const out: { vm: string; image: string; missing: string | null }[] = [];
  for (const vm of vms) {
    if (vm.image.kind !== 'bootc') continue;
    out.push({ vm: vm.name, image: vm.image.ref, missing: await bootcMissing({ ...vm.image, kind: 'bootc' }, g.env ?? process.env) });
  }
  return out;
}

/** Device checks for the project in cwd, if there is one that declares PCI devices. */
async function projectDevices(g: GlobalOptions): Promise<import('../../qemu/devices.js').DeviceCheck[]> {
  try {
    const { loadFiles } = await import('../context.js');
    const project = (await loadFiles(g)).project;
    if (!project || !project.vms.some((v) => v.devices.length > 0)) return [];
    return await (await import('../../qemu/devices.js')).checkDevices(project.vms);
  } catch {
    return [];
  }
}

function tool(t: ToolReport): string {
  if (!t.found) return 'not found';
  return [t.version, t.path].filter((x): x is string => Boolean(x)).join(' — ') || 'found';
}

export function renderDoctor(r: DoctorResult): string {
  const d = r.report;
  const accel = (a: { works: boolean; reason: string | null; ms: number }): string =>
    a.works ? `works (test guest ran in ${Math.round(a.ms)} ms)` : `does not work${a.reason ? `: ${a.reason}` : ''}`;
  const lines = [
    `QEMU:        ${tool(d.qemu)}`,
    `qemu-img:    ${tool(d.qemuImg)}`,
    `KVM:         ${accel(d.accel.kvm)}`,
    `TCG:         ${accel(d.accel.tcg)}`,
    `accel auto:  ${d.accel.auto ?? 'none works'}`,
    `seed ISO:    ${d.seed.how}`,
    `UEFI:        ${d.uefi.available ? (d.uefi.code ?? 'available') : 'no OVMF firmware found (firmware: uefi unavailable)'}`,
    `ssh client:  ${tool(d.ssh)}`,
    `state dir:   ${d.stateDir.path} (${d.stateDir.writable ? 'writable' : `NOT writable${d.stateDir.error ? `: ${d.stateDir.error}` : ''}`})`,
  ];
  for (const l of r.libvirt ?? []) lines.push(...renderLibvirtDoctor(l));
  if (r.devices) lines.push(...renderDeviceChecks(r.devices));
  for (const b of r.bootc ?? []) lines.push(`bootc:       ${b.vm} (${b.image}): ${b.missing ?? 'podman and the image are here'}`);
  lines.push(d.problems.length === 0 ? 'no problems found' : `problems:\n${d.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n');
}

export const command: CliCommand = {
  name: 'doctor',
  description: 'check the host: QEMU, qemu-img, which accelerator really works, state dir',
  examples: ['tend doctor', 'tend doctor --json'],
  async run({ g, io }) {
    const r = await doctorCommand(g);
    if (g.json) io.json(r);
    else io.out(renderDoctor(r));
    return r.ok ? EXIT.ok : EXIT.failure;
  },
};
