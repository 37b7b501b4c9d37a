/**
 * Copy files and folders between the host and a guest, or between two guests, over SFTP (ssh2's
 * client; the guest's sshd serves it with OpenSSH's sftp-server or internal-sftp); guest to guest
 * streams through the host, which keeps nothing on its disk. `tend cp`'s rules are cp -r's and
 * docker cp's:
 *   - a file onto an existing folder (or a path ending in /) lands inside it under its own name;
 *     otherwise DEST is the new file's path (its folder must exist);
 *   - a folder onto an existing folder lands inside it under its own name; onto a path that does
 *     not exist it becomes that path; SRC/. copies the folder's content into DEST;
 *   - permission bits are kept; symbolic links inside a folder are copied as links, SRC itself is
 *     followed; other special files (sockets, devices, FIFOs) are left out and listed.
 * Existing files are overwritten, as cp and scp do.
 */
import { chmod, lstat, mkdir, readdir, readlink, stat, symlink, unlink } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Client, SFTPWrapper, Stats } from 'ssh2';
import { BackendError, NotFoundError, UsageError } from '../../schemas/errors.js';

export interface CopyStats {
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  /** special files left out */
  skipped: string[];
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** SFTP status code "no such file" */
const NO_SUCH_FILE = 2;

type SftpError = Error & { code?: number | string };

/** Opens the SFTP subsystem on an authenticated client. */
export function openSftp(client: Client, where: string): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) =>
    client.sftp((err, sftp) =>
      err
        ? reject(
            new BackendError(
              'SftpUnavailable',
              `${where} offers no SFTP (${err.message}): its sshd needs an sftp subsystem (Debian/Ubuntu: openssh-sftp-server; Alpine: openssh-sftp-server)`,
              { cause: err },
            ),
          )
        : resolve(sftp),
    ),
  );
}

/** The guest side, promisified; `vm` prefixes paths in messages ("web:/etc/x"). */
class Remote {
  constructor(
    readonly s: SFTPWrapper,
    readonly vm: string,
  ) {}

  fail(op: string, path: string, err: SftpError): BackendError {
    return new BackendError('SftpFailed', `cannot ${op} ${this.vm}:${path}: ${err.message}`, { cause: err });
  }

  call<T>(op: string, path: string, f: (cb: (err: SftpError | undefined | null, v: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => f((err, v) => (err ? reject(this.fail(op, path, err)) : resolve(v))));
  }

  /** null when there is nothing at `path` */
  async stat(path: string, follow = true): Promise<Stats | null> {
    return new Promise((resolve, reject) =>
      (follow ? this.s.stat.bind(this.s) : this.s.lstat.bind(this.s))(path, (err: SftpError | undefined, st: Stats) =>
        err ? (err.code === NO_SUCH_FILE ? resolve(null) : reject(this.fail('reach', path, err))) : resolve(st),
      ),
    );
  }
  mkdir(path: string, mode: number): Promise<void> {
    return this.call('create folder', path, (cb) => this.s.mkdir(path, { mode }, (e) => cb(e, undefined)));
  }
  chmod(path: string, mode: number): Promise<void> {
    return this.call('set the mode of', path, (cb) => this.s.chmod(path, mode, (e) => cb(e, undefined)));
  }
  readdir(path: string): Promise<{ filename: string; mode: number }[]> {
    return this.call('list', path, (cb) =>
      this.s.readdir(path, (e, list) =>
        cb(
          e,
          (list ?? []).map((x) => ({ filename: x.filename, mode: x.attrs.mode })),
        ),
      ),
    );
  }
  readlink(path: string): Promise<string> {
    return this.call('read the link', path, (cb) => this.s.readlink(path, cb));
  }
  unlink(path: string): Promise<void> {
    return this.call('replace', path, (cb) => this.s.unlink(path, (e) => cb(e, undefined)));
  }
  async symlink(target: string, path: string): Promise<void> {
    if (await this.stat(path, false)) await this.unlink(path);
    await this.call('create the link', path, (cb) => this.s.symlink(target, path, (e) => cb(e, undefined)));
  }
  put(local: string, path: string, mode: number): Promise<void> {
    return this.call('write', path, (cb) => this.s.fastPut(local, path, { mode }, (e) => cb(e, undefined)));
  }
  get(path: string, local: string): Promise<void> {
    return this.call('read', path, (cb) => this.s.fastGet(path, local, (e) => cb(e, undefined)));
  }
  /** `path` here streamed into `to` of another guest (created with `mode`, then set to it exactly) */
  async streamTo(path: string, to: Remote, toPath: string, mode: number): Promise<void> {
    // open both ends first, so a failure names the side and the path it happened on
    const reader = await this.call<Buffer>('read', path, (cb) => this.s.open(path, 'r', cb));
    const writer = await to.call<Buffer>('write', toPath, (cb) => to.s.open(toPath, 'w', { mode }, cb));
    const close = (r: Remote, h: Buffer): Promise<void> => new Promise((res) => r.s.close(h, () => res()));
    try {
      await pipeline(
        this.s.createReadStream(path, { handle: reader, autoClose: false }),
        to.s.createWriteStream(toPath, { handle: writer, autoClose: false }),
      ).catch((err: SftpError) => {
        throw new BackendError('SftpFailed', `cannot copy ${this.vm}:${path} to ${to.vm}:${toPath}: ${err.message}`, { cause: err });
      });
    } finally {
      await close(this, reader);
      await close(to, writer);
    }
    await to.chmod(toPath, mode);
  }
}

const contentsOnly = (p: string): boolean => p === '.' || p.endsWith('/.');
const stripSlash = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p);

async function localStat(path: string, follow = true): Promise<import('node:fs').Stats | null> {
  try {
    return await (follow ? stat(path) : lstat(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new BackendError('CopyFailed', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function local<T>(op: string, path: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw new BackendError('CopyFailed', `cannot ${op} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

const newStats = (): CopyStats => ({ files: 0, dirs: 0, links: 0, bytes: 0, skipped: [] });

/** Where SRC lands given what is at DEST now (cp -r's rule, module comment); `isDir`: DEST is a folder. */
function landing(
  src: string,
  srcIsDir: boolean,
  dest: string,
  destKind: 'dir' | 'file' | null,
  name: (p: string) => string,
  join2: (a: string, b: string) => string,
  where: string,
): string {
  if (srcIsDir && contentsOnly(src)) {
    if (destKind === 'file') throw new UsageError(`${where} is a file: cannot copy a folder's content into it`, 'NotAFolder');
    return stripSlash(dest);
  }
  if (destKind === 'dir') return join2(dest, name(src));
  if (destKind === 'file' && srcIsDir) throw new UsageError(`${where} is a file: cannot copy a folder onto it`, 'NotAFolder');
  if (destKind === null && dest.endsWith('/') && !srcIsDir)
    throw new NotFoundError('NoSuchFolder', `${where} is not an existing folder (it ends with /)`);
  return stripSlash(dest);
}

const kindOfMode = (mode: number): 'dir' | 'file' | 'link' | 'other' =>
  (mode & S_IFMT) === S_IFDIR ? 'dir' : (mode & S_IFMT) === S_IFREG ? 'file' : (mode & S_IFMT) === S_IFLNK ? 'link' : 'other';

/** Host → guest. */
export async function upload(sftp: SFTPWrapper, vm: string, src: string, dest: string): Promise<CopyStats & { target: string }> {
  const r = new Remote(sftp, vm);
  const stats = newStats();
  const st = await localStat(src);
  if (!st) throw new NotFoundError('NoSuchPath', `${src}: no such file or folder`);
  if (!st.isDirectory() && !st.isFile()) throw new UsageError(`${src} is neither a file nor a folder`, 'NotAFile');
  const d = await r.stat(dest);
  const target = landing(src, st.isDirectory(), dest, d ? (d.isDirectory() ? 'dir' : 'file') : null, basename, posix.join, `${vm}:${dest}`);
  if (st.isFile()) {
    await putFile(r, src, target, st.mode & 0o7777, st.size, stats);
    return { ...stats, target };
  }
  const put = async (from: string, to: string, mode: number): Promise<void> => {
    const existing = await r.stat(to);
    if (!existing) await r.mkdir(to, 0o700);
    else if (!existing.isDirectory()) throw new UsageError(`${vm}:${to} is a file: cannot copy the folder ${from} onto it`, 'NotAFolder');
    stats.dirs++;
    const entries = await local('list', from, () => readdir(from, { withFileTypes: true }));
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const f = join(from, e.name);
      const t = posix.join(to, e.name);
      if (e.isDirectory()) await put(f, t, (await local('read', f, () => lstat(f))).mode & 0o7777);
      else if (e.isFile()) {
        const s = await local('read', f, () => lstat(f));
        await putFile(r, f, t, s.mode & 0o7777, s.size, stats);
      } else if (e.isSymbolicLink()) {
        await r.symlink(await local('read the link', f, () => readlink(f)), t);
        stats.links++;
      } else stats.skipped.push(f);
    }
    // last: a folder without write permission still got its content
    await r.chmod(to, mode);
  };
  await put(src, target, st.mode & 0o7777);
  return { ...stats, target };
}

async function putFile(r: Remote, from: string, to: string, mode: number, size: number, stats: CopyStats): Promise<void> {
  await r.put(from, to, mode);
  // the guest's umask applied to the created file: set the mode exactly
  await r.chmod(to, mode);
  stats.files++;
  stats.bytes += size;
}

/** Guest → host. */
export async function download(sftp: SFTPWrapper, vm: string, src: string, dest: string): Promise<CopyStats & { target: string }> {
  const r = new Remote(sftp, vm);
  const stats = newStats();
  const st = await r.stat(src);
  if (!st) throw new NotFoundError('NoSuchPath', `${vm}:${src}: no such file or folder`);
  if (!st.isDirectory() && !st.isFile()) throw new UsageError(`${vm}:${src} is neither a file nor a folder`, 'NotAFile');
  const d = await localStat(dest);
  const target = landing(src, st.isDirectory(), dest, d ? (d.isDirectory() ? 'dir' : 'file') : null, posix.basename, join, dest);
  const getFile = async (from: string, to: string, mode: number, size: number): Promise<void> => {
    const existing = await localStat(to, false);
    if (existing?.isSymbolicLink()) await local('replace', to, () => unlink(to));
    await r.get(from, to);
    await local('set the mode of', to, () => chmod(to, mode));
    stats.files++;
    stats.bytes += size;
  };
  if (st.isFile()) {
    await getFile(src, target, st.mode & 0o7777, st.size);
    return { ...stats, target };
  }
  const get = async (from: string, to: string, mode: number): Promise<void> => {
    const existing = await localStat(to);
    if (!existing) await local('create folder', to, () => mkdir(to, { mode: 0o700 }));
    else if (!existing.isDirectory()) throw new UsageError(`${to} is a file: cannot copy the folder ${vm}:${from} onto it`, 'NotAFolder');
    stats.dirs++;
    for (const e of (await r.readdir(from)).sort((a, b) => a.filename.localeCompare(b.filename))) {
      const f = posix.join(from, e.filename);
      const t = join(to, e.filename);
      const kind = kindOfMode(e.mode);
      if (kind === 'dir') await get(f, t, e.mode & 0o7777);
      else if (kind === 'file') {
        const s = await r.stat(f, false);
        await getFile(f, t, e.mode & 0o7777, s?.size ?? 0);
      } else if (kind === 'link') {
        const linkTarget = await r.readlink(f);
        if (await localStat(t, false)) await local('replace', t, () => unlink(t));
        await local('create the link', t, () => symlink(linkTarget, t));
        stats.links++;
      } else stats.skipped.push(`${vm}:${f}`);
    }
    await local('set the mode of', to, () => chmod(to, mode));
  };
  await get(src, target, st.mode & 0o7777);
  return { ...stats, target };
}

/** Guest → another guest (or the same one), streamed through the host. */
export async function transfer(
  fromSftp: SFTPWrapper,
  fromVm: string,
  src: string,
  toSftp: SFTPWrapper,
  toVm: string,
  dest: string,
): Promise<CopyStats & { target: string }> {
  const r = new Remote(fromSftp, fromVm);
  const w = new Remote(toSftp, toVm);
  const stats = newStats();
  const st = await r.stat(src);
  if (!st) throw new NotFoundError('NoSuchPath', `${fromVm}:${src}: no such file or folder`);
  if (!st.isDirectory() && !st.isFile()) throw new UsageError(`${fromVm}:${src} is neither a file nor a folder`, 'NotAFile');
  const d = await w.stat(dest);
  const target = landing(
    src,
    st.isDirectory(),
    dest,
    d ? (d.isDirectory() ? 'dir' : 'file') : null,
    posix.basename,
    posix.join,
    `${toVm}:${dest}`,
  );
  const copyFile = async (from: string, to: string, mode: number, size: number): Promise<void> => {
    if ((await w.stat(to, false))?.isSymbolicLink()) await w.unlink(to);
    await r.streamTo(from, w, to, mode);
    stats.files++;
    stats.bytes += size;
  };
  if (st.isFile()) {
    await copyFile(src, target, st.mode & 0o7777, st.size);
    return { ...stats, target };
  }
  const copyDir = async (from: string, to: string, mode: number): Promise<void> => {
    const existing = await w.stat(to);
    if (!existing) await w.mkdir(to, 0o700);
    else if (!existing.isDirectory())
      throw new UsageError(`${toVm}:${to} is a file: cannot copy the folder ${fromVm}:${from} onto it`, 'NotAFolder');
    stats.dirs++;
    for (const e of (await r.readdir(from)).sort((a, b) => a.filename.localeCompare(b.filename))) {
      const f = posix.join(from, e.filename);
      const t = posix.join(to, e.filename);
      const kind = kindOfMode(e.mode);
      if (kind === 'dir') await copyDir(f, t, e.mode & 0o7777);
      else if (kind === 'file') await copyFile(f, t, e.mode & 0o7777, (await r.stat(f, false))?.size ?? 0);
      else if (kind === 'link') {
        await w.symlink(await r.readlink(f), t);
        stats.links++;
      } else stats.skipped.push(`${fromVm}:${f}`);
    }
    // last: a folder without write permission still got its content
    await w.chmod(to, mode);
  };
  await copyDir(src, target, st.mode & 0o7777);
  return { ...stats, target };
}
