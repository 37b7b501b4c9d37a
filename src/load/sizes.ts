/**
 * Disk and volume sizes as the dialects write them, and the checks every dialect shares.
 *
 * - tend.yaml / VMFile.kdl: a bare number is GiB (vmctl's `disk 20`).
 * - holos.yaml: a bare number is bytes and K/M/G/T suffixes are powers of 1024, as holos reads
 *   them (`disk_size: 2GB`, `size: 512M`, `1048576`); holos' minimum is 1 MiB.
 * - Disks and volumes are whole GiB in the canonical model: a holos size that is not a whole
 *   number of GiB is rounded up (a warning says so); a disk smaller than its image keeps the
 *   image's size anyway.
 * - Any size above MAX_SANE_GIB is an error that says what the user probably meant (a byte count
 *   written where GiB are read: 10737418240 → 10 GiB).
 */

/** 64 TiB: larger than any disk a VM of this tool gets; beyond it a size is a unit mistake. */
export const MAX_SANE_GIB = 64 * 1024;
export const GIB = 1024 ** 3;
/** holos' smallest disk or volume */
export const HOLOS_MIN_BYTES = 1024 ** 2;

/** holos' byte size: "10G", "2GB", "500M", "2048K", "1T", 1048576 → bytes; null when not a size. */
export function holosBytes(v: string | number): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : null;
  const m = /^(\d+)\s*([KMGT])?(I?B)?$/i.exec(v.trim());
  if (!m) return null;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * mult;
}

/** "10 GiB", "512 MiB", "100 bytes": a byte count in the largest unit that divides it. */
export function describeBytes(n: number): string {
  for (const [u, f] of [
    ['TiB', 1024 ** 4],
    ['GiB', GIB],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (n >= f && n % f === 0) return `${n / f} ${u}`;
  }
  return n >= GIB ? `${(n / GIB).toFixed(1)} GiB` : `${n} bytes`;
}

/** For a size of `gib` GiB beyond MAX_SANE_GIB: what was probably meant, or null when it is sane. */
export function absurdSize(gib: number, write: (g: number) => string): { message: string; hint: string } | null {
  if (gib <= MAX_SANE_GIB) return null;
  const asBytes = gib / GIB;
  const meant =
    asBytes >= 1 && Number.isInteger(gib)
      ? `did you mean ${gib} bytes (${describeBytes(gib)})? write ${write(Math.ceil(asBytes))}`
      : `write the size in GiB, e.g. ${write(20)}`;
  return { message: `${gib} GiB is more than any disk can be (${Math.round(gib / 1024 ** 2)} PiB)`, hint: meant };
}
