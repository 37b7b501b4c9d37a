/**
 * A VM's display: its video device (`video`) and the remote display of it (`graphics`, VNC or
 * SPICE on 127.0.0.1). The argv part is pure; `checkDisplaySupport` asks the QEMU binary
 * whether it has the device model and the display protocol, so `up` fails with a clear error
 * before QEMU starts (Debian splits qxl, virtio-vga and SPICE into modules: a host may lack one;
 * other builds leave them out).
 */
import { execa } from 'execa';
import type { VmSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';

export type Video = VmSpec['video'];
export type Graphics = VmSpec['graphics'];

/**
 * QEMU device model of each video setting. All are VGA compatible, so legacy BIOS and GRUB's
 * VBE modes work with any of them (virtio-gpu-pci would not: it has no VGA mode).
 */
export const VIDEO_DEVICE: Readonly<Record<Exclude<Video, 'none'>, string>> = {
  vga: 'VGA',
  virtio: 'virtio-vga',
  qxl: 'qxl-vga',
  cirrus: 'cirrus-vga',
};

/** First port of the range VNC and SPICE ports are picked from (VNC display :0). */
export const DISPLAY_PORT_BASE = 5900;
/** Ports tried from DISPLAY_PORT_BASE on (5900-5999: VNC displays :0 to :99). */
export const DISPLAY_PORT_COUNT = 100;

/** The argv of a VM's display. `graphicsPort`: the host port of its VNC/SPICE server (127.0.0.1). */
export function displayArgs(vm: Pick<VmSpec, 'name' | 'video' | 'graphics'>, graphicsPort?: number): string[] {
  // -nodefaults adds no VGA, and -vga none says so explicitly; the device, if any, comes with -device
  const a = ['-display', 'none', '-vga', 'none'];
  if (vm.video !== 'none') a.push('-device', VIDEO_DEVICE[vm.video]);
  if (vm.graphics !== 'none') {
    if (graphicsPort === undefined) throw new Error(`${vm.name}: graphics ${vm.graphics} needs a host port`);
    if (vm.graphics === 'vnc') {
      if (graphicsPort < DISPLAY_PORT_BASE) throw new Error(`${vm.name}: a VNC port is ${DISPLAY_PORT_BASE} or above`);
      // QEMU takes a display number: port 5900 + N
      a.push('-vnc', `127.0.0.1:${graphicsPort - DISPLAY_PORT_BASE}`);
    } else {
      a.push('-spice', `port=${graphicsPort},addr=127.0.0.1,disable-ticketing=on`);
    }
  }
  return a;
}

/** What a QEMU binary offers for displays: device model names, and which protocols work. */
export interface DisplaySupport {
  devices: ReadonlySet<string>;
  vnc: boolean;
  spice: boolean;
}

/** Device names in `qemu-system-* -device help` output (`name "VGA", bus PCI`). */
export function parseDeviceHelp(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^name "([^"]+)"(?:.*?alias "([^"]+)")?/gm)) {
    out.add(m[1]);
    if (m[2]) out.add(m[2]);
  }
  return out;
}

/**
 * What `binary <args>` prints (stdout and stderr), whatever its exit status: QEMU 7.2 lists the
 * options of `-vnc help` and `-spice help` and then exits 1. '' when it cannot run. Asked at every
 * start, not cached: ~0.1 s next to a boot, and always true to the binary installed now.
 */
async function ask(binary: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await execa(binary, args, { env, reject: false, timeout: 20_000, stdin: 'ignore', all: true });
  return String(r.all ?? '');
}

/**
 * What `binary` offers for this VM's display: `-device help` when it has a video device,
 * `-vnc help` / `-spice help` when it asks for graphics (each ~0.1 s, in parallel).
 */
export async function displaySupport(
  vm: Pick<VmSpec, 'video' | 'graphics'>,
  binary: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DisplaySupport> {
  const [dev, vnc, spice] = await Promise.all([
    vm.video !== 'none' ? ask(binary, ['-device', 'help'], env) : '',
    vm.graphics === 'vnc' ? ask(binary, ['-vnc', 'help'], env) : '',
    vm.graphics === 'spice' ? ask(binary, ['-spice', 'help'], env) : '',
  ]);
  return { devices: parseDeviceHelp(dev), vnc: /vnc options/i.test(vnc), spice: /spice options/i.test(spice) };
}

/**
 * The reason this VM's display cannot work with `support`, or null. Named in the error `up`
 * gives, with what to write instead.
 */
export function displayProblem(vm: Pick<VmSpec, 'name' | 'video' | 'graphics'>, support: DisplaySupport, binary: string): string | null {
  if (vm.video !== 'none' && support.devices.size > 0 && !support.devices.has(VIDEO_DEVICE[vm.video])) {
    const others = (Object.keys(VIDEO_DEVICE) as Exclude<Video, 'none'>[]).filter((v) => support.devices.has(VIDEO_DEVICE[v]));
    return (
      `${vm.name}: video ${vm.video} needs QEMU's ${VIDEO_DEVICE[vm.video]} device, which ${binary} does not have` +
      ` (${binary} -device help)` +
      (vm.video === 'qxl' || vm.video === 'virtio' ? '; on Debian and Ubuntu it comes with qemu-system-x86 (module hw-display-*)' : '') +
      `: use ${others.length > 0 ? `video ${others.map((o) => `"${o}"`).join(' or ')}` : 'video "none"'}`
    );
  }
  if (vm.graphics !== 'none' && !support[vm.graphics]) {
    return (
      `${vm.name}: graphics ${vm.graphics} is not available in ${binary} (${binary} -${vm.graphics} help fails)` +
      (vm.graphics === 'spice'
        ? ': install QEMU with SPICE (Debian: qemu-system-x86 with libspice-server1), or use graphics "vnc"'
        : ': use a QEMU built with VNC, or graphics "spice"')
    );
  }
  return null;
}

/** Throws a BackendError (reason DisplayUnsupported) when this VM's display cannot work here. */
export async function checkDisplaySupport(
  vm: Pick<VmSpec, 'name' | 'video' | 'graphics'>,
  binary: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (vm.video === 'none' && vm.graphics === 'none') return;
  const problem = displayProblem(vm, await displaySupport(vm, binary, env), binary);
  if (problem) throw new BackendError('DisplayUnsupported', problem);
}
