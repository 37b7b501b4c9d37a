/**
 * The words every dialect takes for a VM's display (schemas/model.ts `video`, `graphics`): the
 * canonical names, and `std`, QEMU's own name (`-vga std`) for the standard VGA, read as `vga`.
 */
import type { VmSpec } from '../../schemas/model.js';

export const VIDEO_WORDS = ['none', 'vga', 'std', 'virtio', 'qxl', 'cirrus'] as const;
export const GRAPHICS_WORDS = ['none', 'vnc', 'spice'] as const;

export function canonicalVideo(word: (typeof VIDEO_WORDS)[number]): VmSpec['video'] {
  return word === 'std' ? 'vga' : word;
}
