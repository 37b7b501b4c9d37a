/**
 * A minimal ISO 9660 image generated in memory: one root directory of regular files, with a
 * Joliet supplementary descriptor so lower-case, hyphenated names (`user-data`, `meta-data`,
 * `network-config`) read back exactly on Linux, Windows and in cloud-init. The primary tree
 * carries 8.3 upper-case names for readers without Joliet. Output is deterministic: the same
 * label and files always give the same bytes (timestamps are fixed unless a date is given).
 *
 * Layout (2048-byte sectors): 0-15 system area, 16 primary descriptor, 17 Joliet descriptor,
 * 18 terminator, 19-22 path tables (L/M for each tree), then the two root directories, then
 * the file data.
 */
const SECTOR = 2048;
const MAX_JOLIET_NAME = 64;

interface Entry {
  name: string;
  data: Buffer;
  lba: number;
  isoId: Buffer;
  jolietId: Buffer;
}

function both32(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v, off);
  buf.writeUInt32BE(v, off + 4);
}

function both16(buf: Buffer, off: number, v: number): void {
  buf.writeUInt16LE(v, off);
  buf.writeUInt16BE(v, off + 2);
}

function ucs2be(s: string): Buffer {
  const le = Buffer.from(s, 'utf16le');
  for (let i = 0; i < le.length; i += 2) {
    const t = le[i];
    le[i] = le[i + 1];
    le[i + 1] = t;
  }
  return le;
}

/** Fill a text field: ASCII padded with spaces, or UCS-2 BE padded with UCS-2 spaces. */
function textField(buf: Buffer, off: number, len: number, s: string, joliet: boolean): void {
  if (joliet) {
    for (let i = 0; i + 1 < len; i += 2) buf.writeUInt16BE(0x20, off + i);
    if (len % 2) buf[off + len - 1] = 0x20;
    ucs2be(s).copy(buf, off, 0, Math.min(len - (len % 2), s.length * 2));
  } else {
    buf.fill(0x20, off, off + len);
    buf.write(s.slice(0, len), off, 'ascii');
  }
}

function decDate(d: Date): Buffer {
  const p = (n: number, w: number): string => String(n).padStart(w, '0');
  const s = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1, 2)}${p(d.getUTCDate(), 2)}${p(d.getUTCHours(), 2)}${p(d.getUTCMinutes(), 2)}${p(d.getUTCSeconds(), 2)}00`;
  return Buffer.concat([Buffer.from(s, 'ascii'), Buffer.from([0])]);
}

function dirDate(d: Date): Buffer {
  return Buffer.from([
    d.getUTCFullYear() - 1900,
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    0,
  ]);
}

function dirRecord(id: Buffer, lba: number, size: number, isDir: boolean, date: Date): Buffer {
  const len = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(len);
  r[0] = len;
  r[1] = 0;
  both32(r, 2, lba);
  both32(r, 10, size);
  dirDate(date).copy(r, 18);
  r[25] = isDir ? 2 : 0;
  both16(r, 28, 1);
  r[32] = id.length;
  id.copy(r, 33);
  return r;
}

/** 8.3 upper-case d-character names, made unique. */
function isoNames(names: string[]): string[] {
  const used = new Set<string>();
  return names.map((n) => {
    const clean = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    const dot = n.lastIndexOf('.');
    const stem = clean(dot > 0 ? n.slice(0, dot) : n);
    const ext = clean(dot > 0 ? n.slice(dot + 1) : '').slice(0, 3);
    let base = stem.slice(0, 8);
    for (let i = 1; used.has(`${base}.${ext}`); i++) base = `${stem.slice(0, 8 - String(i).length - 1)}~${i}`;
    used.add(`${base}.${ext}`);
    return `${base}.${ext};1`;
  });
}

/** Lay out records into whole sectors (a record never crosses a sector boundary). */
function directory(records: Buffer[]): Buffer {
  const sectors: Buffer[] = [];
  let cur = Buffer.alloc(SECTOR);
  let used = 0;
  for (const r of records) {
    if (used + r.length > SECTOR) {
      sectors.push(cur);
      cur = Buffer.alloc(SECTOR);
      used = 0;
    }
    r.copy(cur, used);
    used += r.length;
  }
  sectors.push(cur);
  return Buffer.concat(sectors);
}

function sectorsFor(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

function pathTable(rootLba: number, bigEndian: boolean): Buffer {
  const t = Buffer.alloc(10);
  t[0] = 1; // length of directory identifier
  t[1] = 0;
  if (bigEndian) t.writeUInt32BE(rootLba, 2);
  else t.writeUInt32LE(rootLba, 2);
  if (bigEndian) t.writeUInt16BE(1, 6);
  else t.writeUInt16LE(1, 6);
  t[8] = 0; // root's identifier
  return t;
}

export function buildIso(volumeLabel: string, files: Record<string, string | Uint8Array>, opts: { date?: Date } = {}): Buffer {
  const date = opts.date ?? new Date(Date.UTC(2000, 0, 1));
  const names = Object.keys(files).sort();
  for (const n of names) {
    if (!n || n.includes('/') || n.includes('\0') || n === '.' || n === '..')
      throw new Error(`ISO file name "${n}" is not a plain file name`);
    if (n.length > MAX_JOLIET_NAME) throw new Error(`ISO file name "${n}" is longer than ${MAX_JOLIET_NAME} characters`);
  }
  if (volumeLabel.length > 16) throw new Error(`volume label "${volumeLabel}" is longer than 16 characters`);
  const iso = isoNames(names);
  const entries: Entry[] = names.map((name, i) => {
    const v = files[name];
    return {
      name,
      data: typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v),
      lba: 0,
      isoId: Buffer.from(iso[i], 'ascii'),
      jolietId: ucs2be(name),
    };
  });

  const dot = Buffer.from([0]);
  const dotdot = Buffer.from([1]);
  const recordsFor = (joliet: boolean, selfLba: number, selfSize: number): Buffer[] => {
    const sorted = [...entries].sort((a, b) => Buffer.compare(joliet ? a.jolietId : a.isoId, joliet ? b.jolietId : b.isoId));
    return [
      dirRecord(dot, selfLba, selfSize, true, date),
      dirRecord(dotdot, selfLba, selfSize, true, date),
      ...sorted.map((e) => dirRecord(joliet ? e.jolietId : e.isoId, e.lba, e.data.length, false, date)),
    ];
  };
  // Sizes first (LBAs do not change record lengths), then real LBAs.
  const primarySize = directory(recordsFor(false, 0, 0)).length;
  const jolietSize = directory(recordsFor(true, 0, 0)).length;
  const primaryLba = 23;
  const jolietLba = primaryLba + primarySize / SECTOR;
  let next = jolietLba + jolietSize / SECTOR;
  for (const e of entries) {
    e.lba = e.data.length === 0 ? 0 : next;
    next += sectorsFor(e.data.length);
  }
  const totalSectors = next;
  const primaryDir = directory(recordsFor(false, primaryLba, primarySize));
  const jolietDir = directory(recordsFor(true, jolietLba, jolietSize));

  const out = Buffer.alloc(totalSectors * SECTOR);
  const descriptor = (sector: number, joliet: boolean, rootLba: number, rootSize: number, pathL: number, pathM: number): void => {
    const d = out.subarray(sector * SECTOR, (sector + 1) * SECTOR);
    d[0] = joliet ? 2 : 1;
    d.write('CD001', 1, 'ascii');
    d[6] = 1;
    textField(d, 8, 32, '', joliet);
    textField(d, 40, 32, volumeLabel, joliet);
    both32(d, 80, totalSectors);
    if (joliet) d.write('%/E', 88, 'ascii'); // UCS-2 level 3
    both16(d, 120, 1);
    both16(d, 124, 1);
    both16(d, 128, SECTOR);
    both32(d, 132, 10);
    d.writeUInt32LE(pathL, 140);
    d.writeUInt32BE(pathM, 148);
    dirRecord(Buffer.from([0]), rootLba, rootSize, true, date).copy(d, 156);
    textField(d, 190, 128, '', joliet);
    textField(d, 318, 128, '', joliet);
    textField(d, 446, 128, '', joliet);
    textField(d, 574, 128, 'TEND', joliet);
    textField(d, 702, 37, '', joliet);
    textField(d, 739, 37, '', joliet);
    textField(d, 776, 37, '', joliet);
    decDate(date).copy(d, 813);
    decDate(date).copy(d, 830);
    Buffer.concat([Buffer.from('0000000000000000', 'ascii'), Buffer.from([0])]).copy(d, 847);
    decDate(date).copy(d, 864);
    d[881] = 1;
  };
  descriptor(16, false, primaryLba, primarySize, 19, 20);
  descriptor(17, true, jolietLba, jolietSize, 21, 22);
  const term = out.subarray(18 * SECTOR);
  term[0] = 255;
  term.write('CD001', 1, 'ascii');
  term[6] = 1;
  pathTable(primaryLba, false).copy(out, 19 * SECTOR);
  pathTable(primaryLba, true).copy(out, 20 * SECTOR);
  pathTable(jolietLba, false).copy(out, 21 * SECTOR);
  pathTable(jolietLba, true).copy(out, 22 * SECTOR);
  primaryDir.copy(out, primaryLba * SECTOR);
  jolietDir.copy(out, jolietLba * SECTOR);
  for (const e of entries) if (e.data.length) e.data.copy(out, e.lba * SECTOR);
  return out;
}
