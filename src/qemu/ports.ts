/**
 * Host ports of a VM: the SSH forward and every declared port. A fixed host port is checked
 * free (a bind test on its address); a port declared without one (`hostPort: null`) gets a free
 * port, persisted in FILES.ports so it stays the same across restarts, and chosen again only
 * when someone else has taken it meanwhile.
 *
 * The record (ports.json) is the shape ObservedVm.ports has: guest "port/proto" -> "addr:port",
 * SSH under "ssh".
 */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import type { PortSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import type { HostForward } from './argv.js';

export type PortRecord = Record<string, string>;

/** ports.json: "ssh" or "<guest port>/<proto>" → "<host address>:<host port>". */
export const portRecordSchema = {
  $id: 'tend:state/ports',
  type: 'object',
  propertyNames: { pattern: '^(ssh|[0-9]{1,5}/(tcp|udp))$' },
  additionalProperties: { type: 'string', pattern: '^[^\\s]+:[0-9]{1,5}$' },
} as const;

export interface AllocatedPorts {
  sshPort: number;
  sshAddress: string;
  forwards: HostForward[];
  record: PortRecord;
}

export const portKey = (p: { guestPort: number; protocol: string }): string => `${p.guestPort}/${p.protocol}`;

/** Try to bind `port` on `address` (0 = any free one); resolves with the port bound, or null if taken. */
export function tryBind(address: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = createSocket(address.includes(':') ? 'udp6' : 'udp4');
      s.once('error', (err: NodeJS.ErrnoException) => {
        s.close();
        if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(null);
        else reject(err);
      });
      s.bind(port, address, () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
      return;
    }
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(null);
      else reject(err);
    });
    srv.listen({ port, host: address, exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : port;
      srv.close(() => resolve(got));
    });
  });
}

function splitAddr(v: string | undefined): { address: string; port: number } | null {
  if (!v) return null;
  const i = v.lastIndexOf(':');
  const port = Number(v.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { address: v.slice(0, i), port };
}

/**
 * Allocate the host ports for one start. `previous` is the persisted record (or undefined).
 * `needSsh`: false for tap/none networking (no forward is made).
 */
export async function allocatePorts(
  vmName: string,
  ports: readonly PortSpec[],
  previous: PortRecord | undefined,
  opts: { needSsh: boolean; sshAddress?: string },
): Promise<AllocatedPorts> {
  const taken = new Set<string>();
  const record: PortRecord = {};
  const pick = async (key: string, address: string, protocol: 'tcp' | 'udp'): Promise<number> => {
    const prev = splitAddr(previous?.[key]);
    if (prev && prev.address === address && !taken.has(`${protocol}:${prev.port}`)) {
      if ((await tryBind(address, prev.port, protocol)) !== null) return prev.port;
    }
    for (let i = 0; i < 20; i++) {
      const p = await tryBind(address, 0, protocol);
      if (p !== null && !taken.has(`${protocol}:${p}`)) return p;
    }
    throw new BackendError('NoFreePort', `${vmName}: could not find a free ${protocol} port on ${address}`);
  };

  const sshAddress = opts.sshAddress ?? '127.0.0.1';
  let sshPort = 0;
  if (opts.needSsh) {
    sshPort = await pick('ssh', sshAddress, 'tcp');
    taken.add(`tcp:${sshPort}`);
    record.ssh = `${sshAddress}:${sshPort}`;
  }
  const forwards: HostForward[] = [];
  for (const p of ports) {
    let hostPort: number;
    if (p.hostPort !== null) {
      hostPort = p.hostPort;
      if (taken.has(`${p.protocol}:${hostPort}`) || (await tryBind(p.hostAddress, hostPort, p.protocol)) === null) {
        throw new BackendError(
          'HostPortInUse',
          `${vmName}: host port ${p.hostAddress}:${hostPort}/${p.protocol} (for guest port ${p.guestPort}) is already in use`,
        );
      }
    } else {
      hostPort = await pick(portKey(p), p.hostAddress, p.protocol);
    }
    taken.add(`${p.protocol}:${hostPort}`);
    forwards.push({ guestPort: p.guestPort, protocol: p.protocol, hostAddress: p.hostAddress, hostPort });
    record[portKey(p)] = `${p.hostAddress}:${hostPort}`;
  }
  return { sshPort, sshAddress, forwards, record };
}

/**
 * The port record of a running QEMU read from its own argv (`-netdev user,...,hostfwd=...`; the
 * first forward is SSH, argv.ts puts it there): what a lost or damaged ports.json is rebuilt from.
 */
export function forwardsOf(argv: readonly string[]): PortRecord {
  const record: PortRecord = {};
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] !== '-netdev' || !argv[i + 1]?.startsWith('user,')) continue;
    let first = true;
    for (const part of (argv[i + 1] as string).split(',')) {
      const m = /^hostfwd=(tcp|udp):([^:]*):(\d+)-[^:]*:(\d+)$/.exec(part);
      if (!m) continue;
      const addr = `${m[2] || '0.0.0.0'}:${m[3]}`;
      if (first && m[1] === 'tcp') record.ssh = addr;
      else record[`${m[4]}/${m[1]}`] = addr;
      first = false;
    }
  }
  return record;
}
