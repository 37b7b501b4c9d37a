/**
 * Which host ports are taken, and by whom: the listening TCP sockets and bound UDP sockets of
 * /proc/net/{tcp,tcp6,udp,udp6}, each matched to the process holding it through the socket
 * inodes in /proc/<pid>/fd. A socket of another user's process is still reported (the kernel
 * lists every socket), only without a pid. Linux only; elsewhere the list is empty.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface HostPortUse {
  protocol: 'tcp' | 'udp';
  /** "127.0.0.1", "0.0.0.0", "::", "::1", ... */
  address: string;
  port: number;
  inode: number;
  /** null when the holder is not visible (another user's process without privileges) */
  pid: number | null;
  /** the holder's command line, space-joined; null when unknown */
  command: string | null;
}

const TCP_LISTEN = '0A';

/** "0100007F" (little-endian per 32-bit word, as the kernel prints it) -> "127.0.0.1". */
function ipv4(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

function ipv6(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(Number.parseInt(word.slice(b * 2, b * 2 + 2), 16));
  }
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // compress the longest run of zero groups
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * Parse one /proc/net/{tcp,udp}[6] table: TCP sockets in LISTEN, every bound UDP socket.
 * Pure (the text is passed in).
 */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp', family: 4 | 6): Omit<HostPortUse, 'pid' | 'command'>[] {
  const out: Omit<HostPortUse, 'pid' | 'command'>[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [addrHex, portHex] = f[1].split(':');
    const state = f[3];
    if (protocol === 'tcp' && state !== TCP_LISTEN) continue;
    const port = Number.parseInt(portHex, 16);
    if (!port) continue;
    out.push({ protocol, address: family === 4 ? ipv4(addrHex) : ipv6(addrHex), port, inode: Number(f[9]) });
  }
  return out;
}

/** socket inode -> pid, from /proc/<pid>/fd links "socket:[inode]" (only processes we may read). */
async function socketOwners(inodes: Set<number>, procRoot: string): Promise<Map<number, number>> {
  const owners = new Map<number, number>();
  if (inodes.size === 0) return owners;
  const pids = (await readdir(procRoot).catch(() => [] as string[])).filter((e) => /^\d+$/.test(e));
  await Promise.all(
    pids.map(async (pid) => {
      const fds = await readdir(`${procRoot}/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const link = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m && inodes.has(Number(m[1])) && !owners.has(Number(m[1]))) owners.set(Number(m[1]), Number(pid));
      }
    }),
  );
  return owners;
}

async function commandOf(pid: number, procRoot: string): Promise<string | null> {
  const raw = await readFile(`${procRoot}/${pid}/cmdline`, 'utf8').catch(() => '');
  const cmd = raw.split('\0').filter(Boolean).join(' ');
  return cmd || null;
}

/** Every listening TCP / bound UDP socket on this host with its holder where it can be known. */
export async function hostPortsInUse(opts: { procRoot?: string } = {}): Promise<HostPortUse[]> {
  const proc = opts.procRoot ?? '/proc';
  const tables: [string, 'tcp' | 'udp', 4 | 6][] = [
    ['tcp', 'tcp', 4],
    ['tcp6', 'tcp', 6],
    ['udp', 'udp', 4],
    ['udp6', 'udp', 6],
  ];
  const sockets = (
    await Promise.all(
      tables.map(async ([file, protocol, family]) =>
        parseProcNet(await readFile(`${proc}/net/${file}`, 'utf8').catch(() => ''), protocol, family),
      ),
    )
  ).flat();
  const owners = await socketOwners(new Set(sockets.map((s) => s.inode).filter((i) => i > 0)), proc);
  const commands = new Map<number, string | null>();
  for (const pid of new Set(owners.values())) commands.set(pid, await commandOf(pid, proc));
  return sockets.map((s) => {
    const pid = owners.get(s.inode) ?? null;
    return { ...s, pid, command: pid === null ? null : (commands.get(pid) ?? null) };
  });
}
