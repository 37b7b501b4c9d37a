/**
 * Host ports of a VM: the SSH forward and every declared port. A fixed host port is checked
 * free (a bind test on its address); a port declared without one (`hostPort: null`) gets a free
 * port, persisted in FILES.ports so it stays the same across restarts, and chosen again only
 * when someone else has taken it meanwhile.
 *
 * The record (ports.json) is the shape ObservedVm.ports has: guest "port/proto" -> "addr:port",
 * SSH under "ssh", the VNC or SPICE server (`graphics`) under "vnc" / "spice". Those two are
 * always on 127.0.0.1 and picked from 5900-5999 (VNC names a port by its display number).
 */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import type { PortSpec } from '../../schemas/model.js';
import { BackendError } from '../../schemas/errors.js';
import type { HostForward } from './argv.js';
import { DISPLAY_PORT_BASE, DISPLAY_PORT_COUNT } from './display.js';

export type PortRecord = Record<string, string>;

/** ports.json: "ssh" or "<guest port>/<proto>" → "<host address>:<host port>". */
export const portRecordSchema = {
  $id: 'tend:state/ports',
  type: 'object',
  propertyNames: { pattern: '^(ssh|vnc|spice|[0-9]{1,5}/(tcp|udp))$' },
  additionalProperties: { type: 'string', pattern: '^[^\\s]+:[0-9]{1,5}$' },
} as const;

export interface AllocatedPorts {
  sshPort: number;
  sshAddress: string;
  forwards: HostForward[];
  /** the VNC/SPICE server's port on 127.0.0.1, when graphics were asked for */
  graphicsPort?: number;
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
  opts: { needSsh: boolean; sshAddress?: string; graphics?: 'vnc' | 'spice' | 'none' },
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
  let graphicsPort: number | undefined;
  if (opts.graphics && opts.graphics !== 'none') {
    graphicsPort = await pickDisplayPort(vmName, opts.graphics, splitAddr(previous?.[opts.graphics]), taken);
    record[opts.graphics] = `${DISPLAY_ADDRESS}:${graphicsPort}`;
  }
  return { sshPort, sshAddress, forwards, ...(graphicsPort !== undefined ? { graphicsPort } : {}), record };
}

/** VNC and SPICE listen on loopback only: a remote viewer goes through an SSH tunnel. */
export const DISPLAY_ADDRESS = '127.0.0.1';

async function pickDisplayPort(
  vmName: string,
  protocol: 'vnc' | 'spice',
  prev: { address: string; port: number } | null,
  taken: Set<string>,
): Promise<number> {
  const inRange = (p: number): boolean => p >= DISPLAY_PORT_BASE && p < DISPLAY_PORT_BASE + DISPLAY_PORT_COUNT;
  const candidates = prev && prev.address === DISPLAY_ADDRESS && inRange(prev.port) ? [prev.port] : [];
  for (let p = DISPLAY_PORT_BASE; p < DISPLAY_PORT_BASE + DISPLAY_PORT_COUNT; p++) if (p !== candidates[0]) candidates.push(p);
  for (const p of candidates) {
    if (taken.has(`tcp:${p}`)) continue;
    if ((await tryBind(DISPLAY_ADDRESS, p, 'tcp')) !== null) return p;
  }
  throw new BackendError(
    'NoFreePort',
    `${vmName}: no free ${protocol} port on ${DISPLAY_ADDRESS} between ${DISPLAY_PORT_BASE} and ${DISPLAY_PORT_BASE + DISPLAY_PORT_COUNT - 1}`,
  );
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
  // the VNC/SPICE server (src/qemu/display.ts)
  const vnc = argv.indexOf('-vnc');
  const vm = vnc >= 0 ? /^([^:]+):(\d+)$/.exec(argv[vnc + 1] ?? '') : null;
  if (vm) record.vnc = `${vm[1]}:${DISPLAY_PORT_BASE + Number(vm[2])}`;
  const spice = argv.indexOf('-spice');
  const sp = spice >= 0 ? /(?:^|,)port=(\d+)/.exec(argv[spice + 1] ?? '') : null;
  if (sp) record.spice = `${/(?:^|,)addr=([^,]+)/.exec(argv[spice + 1] ?? '')?.[1] ?? DISPLAY_ADDRESS}:${sp[1]}`;
  return record;
}
