/**
 * libvirt's QEMU save-image format (what `virsh save` writes and `virsh restore` reads; libvirt
 * 9.0's src/qemu/qemu_saveimage.h, version 2): a 92-byte header, the domain XML (NUL-ended) and
 * zero padding filling `data_len` bytes, then QEMU's migration stream. Header fields are
 * host-endian uint32s: version, data_len, was_running, compressed (0 = raw), cookieOffset (0: no
 * migration cookie), 14 unused.
 *
 * tend writes it itself for a warm clone (src/libvirt/clone.ts): `virsh restore --xml` and
 * `virsh save-image-edit` refuse another domain name or UUID ("Target domain name 'b' does not
 * match source 'a'", libvirt 9.0), and a clone is another domain. libvirt reads the XML of a file
 * it did not write as its own (it parses and validates it as for any restore).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import { pipeline } from 'node:stream/promises';

export const SAVE_MAGIC = 'LibvirtQemudSave';
export const SAVE_HEADER_BYTES = 92;
const SAVE_VERSION = 2;
/** where the stream starts is rounded up to this (libvirt pads its own images too) */
const ALIGN = 4096;

/** The header and XML part of a save image whose domain is `xml` (the stream follows it). */
export function saveImageHead(xml: string, running = true): Buffer {
  const x = Buffer.from(`${xml}\0`, 'utf8');
  const total = Math.ceil((SAVE_HEADER_BYTES + x.length) / ALIGN) * ALIGN;
  const head = Buffer.alloc(total);
  head.write(SAVE_MAGIC, 0, 'latin1');
  const le = endianness() === 'LE';
  const u32 = (v: number, at: number): number => (le ? head.writeUInt32LE(v, at) : head.writeUInt32BE(v, at));
  u32(SAVE_VERSION, 16);
  u32(total - SAVE_HEADER_BYTES, 20); // data_len: the XML and its padding
  u32(running ? 1 : 0, 24);
  u32(0, 28); // raw stream
  u32(0, 32); // no cookie
  x.copy(head, SAVE_HEADER_BYTES);
  return head;
}

/** The domain XML in a save image's head (libvirt's or tend's), or null when it is not one. */
export function saveImageXml(head: Buffer): string | null {
  if (head.length < SAVE_HEADER_BYTES || head.toString('latin1', 0, 16) !== SAVE_MAGIC) return null;
  const le = endianness() === 'LE';
  const u32 = (at: number): number => (le ? head.readUInt32LE(at) : head.readUInt32BE(at));
  const dataLen = u32(20);
  const cookie = u32(32);
  const xmlEnd = SAVE_HEADER_BYTES + (cookie > 0 ? cookie : dataLen);
  if (head.length < xmlEnd) return null;
  const nul = head.indexOf(0, SAVE_HEADER_BYTES);
  return head.toString('utf8', SAVE_HEADER_BYTES, nul < 0 || nul > xmlEnd ? xmlEnd : nul);
}

/** Write a save image at `path` (mode 0600): `xml` as its domain, the migration stream of `streamFile`. */
export async function writeSaveImage(path: string, xml: string, streamFile: string): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.write(saveImageHead(xml));
  } finally {
    await fh.close();
  }
  await pipeline(createReadStream(streamFile, { highWaterMark: 1 << 20 }), createWriteStream(path, { flags: 'a' }));
}
