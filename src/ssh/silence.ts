/**
 * A guest that says nothing: while readiness waits for the SSH banner, the VM's serial console
 * log is watched. When it has not grown for a while (60 s by default, $TEND_CONSOLE_HINT_AFTER)
 * and no banner came, the progress line says so once, with the likely causes and where to
 * look, instead of waiting silently until the SSH stage's time limit (10 minutes).
 *
 * Counted from when the watch starts (readiness starts right after QEMU does). Only a console
 * log that exists is watched: tend never reports silence it has not observed.
 */
import { stat } from 'node:fs/promises';
import type { VmSpec } from '../../schemas/model.js';
import type { Clock } from '../../schemas/ports.js';
import { parseDuration } from '../../schemas/units.js';

export const CONSOLE_HINT_ENV = 'TEND_CONSOLE_HINT_AFTER';
export const DEFAULT_CONSOLE_HINT_AFTER_MS = 60_000;

/** The silence that earns the hint, in ms: $TEND_CONSOLE_HINT_AFTER (a duration; 0 = never), else 60 s. */
export function consoleHintAfterMs(env: NodeJS.ProcessEnv): number | null {
  const v = env[CONSOLE_HINT_ENV];
  if (v === undefined || v.trim() === '') return DEFAULT_CONSOLE_HINT_AFTER_MS;
  const s = parseDuration(v);
  if (s === null) return DEFAULT_CONSOLE_HINT_AFTER_MS;
  return s > 0 ? s * 1000 : null;
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

export interface SilenceWatch {
  /** stop watching (the banner came, or readiness ended); idempotent */
  stop(): void;
  /** settles when the watch has ended (for tests) */
  done: Promise<void>;
}

/**
 * Polls `consoleLog`'s size every `pollMs`; calls `onSilent(seconds)` once when it has not
 * changed for `afterMs`. Ends at the first byte of output, after the call, or at `stop()`.
 */
export function watchConsoleSilence(opts: {
  consoleLog: string;
  afterMs: number;
  clock: Clock;
  onSilent: (seconds: number) => void;
  pollMs?: number;
}): SilenceWatch {
  const ctl = new AbortController();
  const poll = opts.pollMs ?? Math.min(5000, Math.max(100, Math.floor(opts.afterMs / 4)));
  const run = async (): Promise<void> => {
    const start = opts.clock.now();
    const initial = await sizeOf(opts.consoleLog);
    if (initial === null) return;
    for (;;) {
      const left = start + opts.afterMs - opts.clock.now();
      await opts.clock.sleep(Math.max(0, Math.min(poll, left)), ctl.signal);
      if (ctl.signal.aborted) return;
      if ((await sizeOf(opts.consoleLog)) !== initial) return; // the guest speaks
      if (opts.clock.now() - start >= opts.afterMs) {
        if (!ctl.signal.aborted) opts.onSilent(Math.round((opts.clock.now() - start) / 1000));
        return;
      }
    }
  };
  const done = run().catch(() => undefined);
  return { stop: () => ctl.abort(), done };
}

/**
 * The hint line: what was seen (nothing), the likely causes for this VM's settings, and the
 * commands that show more. `screen`: "vnc 127.0.0.1:5901" when the VM has graphics.
 */
export function silenceHint(vm: Pick<VmSpec, 'name' | 'video' | 'firmware' | 'image'>, seconds: number, screen: string | null): string {
  const causes = [
    vm.video === 'none'
      ? 'no video device (video is "none"): the GRUB of stock images waits for one on its graphical terminal; remove `video none` or set video "vga"'
      : vm.video === 'vga'
        ? 'the screen: GRUB and the kernel may draw only on the vga screen (no serial terminal, no console=ttyS0 on the kernel line); look at it with graphics vnc'
        : `the video device (video "${vm.video}"): a stock image's GRUB may not draw on it; try video "vga"`,
    vm.firmware === 'bios'
      ? 'firmware: an image made for UEFI only does not boot with BIOS (tend.yaml vm.uefi: true, VMFile.kdl firmware "uefi")'
      : `firmware: ${vm.firmware}; an image made for BIOS only does not boot with UEFI`,
    vm.image.format
      ? `the image format: declared ${vm.image.format}; is the file really ${vm.image.format}? (qemu-img info)`
      : 'the image: is it a bootable disk image (qemu-img info), not an ISO or an archive?',
  ];
  return (
    `no console output and no SSH banner for ${seconds} s: the guest may be stuck before its kernel starts. ` +
    `Likely causes: ${causes.map((c, i) => `(${i + 1}) ${c}`).join('; ')}. ` +
    `Look: tend logs ${vm.name} --console` +
    (screen ? `; its screen: ${screen}` : `; to see its screen, set graphics vnc`) +
    '. Still waiting.'
  );
}
