/**
 * Which accelerator works here, found out for real: a tiny guest (a 512-byte boot sector made
 * in-process) that writes one byte to the serial port and then pokes `isa-debug-exit`. If the
 * byte arrives in time the accelerator runs guests. `/dev/kvm` existing proves nothing: on
 * nested-virtualisation CI hosts it opens fine and guests hang, so `auto` must fall back to TCG.
 *
 * Results are cached per process (per binary and accelerator) and, for `auto`, on disk for a day
 * (`~/.cache/tend/accel.json`, keyed by binary and kernel: it is a property of the host), so
 * starting a VM does not pay the 1-3 s probe every time; doctor always asks for a fresh probe.
 */
import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { readJson, writeJsonAtomic } from '../state/atomic.js';
import { validateAccelVerdict } from '../state/validators.generated.js';
import { join } from 'node:path';
import { BackendError } from '../../schemas/errors.js';
import type { Accel } from './argv.js';

export interface ProbeResult {
  accel: Accel;
  ok: boolean;
  /** why it does not work (null when ok) */
  reason: string | null;
  ms: number;
}

export interface AccelChoice {
  accel: Accel;
  /** why KVM is not used (auto on a host where it does not work); null otherwise */
  reason: string | null;
}

export interface ProbeOptions {
  binary?: string;
  env?: NodeJS.ProcessEnv;
  /** default 3000 for kvm, 10000 for tcg */
  timeoutMs?: number;
  /** ignore the cache */
  fresh?: boolean;
  kvmDevice?: string;
  /** where `chooseAccel` keeps its verdict between runs (none: probe every process) */
  cacheFile?: string;
  /** time source for the on-disk verdict's age */
  now?: () => number;
}

/** How long an on-disk verdict stands before `auto` probes again. */
export const ACCEL_VERDICT_TTL_MS = 24 * 3600 * 1000;

interface Verdict {
  key: string;
  at: number;
  choice: AccelChoice;
}

/** accel.json (host cache): a damaged one is probed again. */
export const accelVerdictSchema = {
  $id: 'tend:state/accel',
  type: 'object',
  required: ['key', 'at', 'choice'],
  properties: {
    key: { type: 'string' },
    at: { type: 'number' },
    choice: {
      type: 'object',
      required: ['accel', 'reason'],
      properties: { accel: { enum: ['kvm', 'tcg'] }, reason: { type: ['string', 'null'] } },
    },
  },
} as const;

const MARK = 0x4b; // 'K'

/**
 * A boot sector: enable interrupts and wait for one BIOS timer tick (so interrupt delivery works
 * too), then out 'K' to COM1 (0x3f8), then write to isa-debug-exit (0xf4), then halt.
 */
export function probeBootSector(): Buffer {
  const code = [
    0xfb, //                   sti
    0xb8,
    0x40,
    0x00, //       mov ax, 0x40
    0x8e,
    0xc0, //             mov es, ax
    0x26,
    0x8b,
    0x1e,
    0x6c,
    0x00, // mov bx, [es:0x6c]   (BIOS tick count)
    0xf4, //                   wait: hlt
    0x26,
    0x3b,
    0x1e,
    0x6c,
    0x00, // cmp bx, [es:0x6c]
    0x74,
    0xf8, //             je wait
    0xba,
    0xf8,
    0x03, // mov dx, 0x3f8
    0xb0,
    MARK, //       mov al, 'K'
    0xee, //             out dx, al
    0xba,
    0xf4,
    0x00, // mov dx, 0xf4
    0xb0,
    0x01, //       mov al, 1
    0xee, //             out dx, al
    0xf4, //             hlt
    0xeb,
    0xfd, //       jmp back to hlt
  ];
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

const cache = new Map<string, Promise<ProbeResult>>();

/** Boot the probe guest under `accel`; resolves with whether its byte arrived in time. */
export function probeAccel(accel: Accel, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const binary = opts.binary ?? 'qemu-system-x86_64';
  const key = `${binary}\0${accel}`;
  const hit = cache.get(key);
  if (hit && !opts.fresh) return hit;
  const p = runProbe(accel, binary, opts);
  cache.set(key, p);
  return p;
}

async function runProbe(accel: Accel, binary: string, opts: ProbeOptions): Promise<ProbeResult> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? (accel === 'kvm' ? 3000 : 10000);
  const done = (ok: boolean, reason: string | null): ProbeResult => ({ accel, ok, reason, ms: Date.now() - started });
  if (accel === 'kvm') {
    const dev = opts.kvmDevice ?? '/dev/kvm';
    try {
      await access(dev, constants.R_OK | constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return done(
        false,
        code === 'ENOENT'
          ? `KVM: ${dev} does not exist (no hardware virtualisation, or the kvm module is not loaded)`
          : `KVM: cannot open ${dev} (${code}; add yourself to its group)`,
      );
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'tend-probe-'));
  try {
    const img = join(dir, 'probe.img');
    await writeFile(img, probeBootSector());
    const argv = [
      '-accel',
      accel,
      '-machine',
      'pc',
      '-m',
      '16',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-no-reboot',
      '-device',
      'isa-debug-exit,iobase=0xf4,iosize=0x04',
      '-drive',
      `file=${img},format=raw,if=ide`,
    ];
    return await new Promise<ProbeResult>((resolve) => {
      let settled = false;
      let stderr = '';
      // Under `timeout`, the probe guest dies on its own even if tend is SIGKILLed meanwhile (a KVM
      // probe guest on a nested host would otherwise hang forever); tend's SIGTERM is forwarded.
      const limit = String(Math.ceil(timeoutMs / 1000) + 2);
      const child = spawn('timeout', ['-s', 'KILL', limit, binary, ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
      });
      const settle = (ok: boolean, reason: string | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        resolve(done(ok, reason));
      };
      const name = accel === 'kvm' ? 'KVM' : 'TCG';
      const timer = setTimeout(() => {
        settle(
          false,
          accel === 'kvm'
            ? `KVM: /dev/kvm opens but a test guest did not run within ${timeoutMs / 1000} s (nested virtualisation?)`
            : `TCG: a test guest did not run within ${timeoutMs / 1000} s`,
        );
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => {
        if (b.includes(MARK)) settle(true, null);
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s: string) => {
        if (stderr.length < 4000) stderr += s;
      });
      child.on('error', (err) => settle(false, `${name}: cannot run ${binary}: ${err.message}`));
      child.on('exit', (code) => {
        // the byte may still be in the pipe: give stdout a moment to drain
        // 126/127: `timeout` could not run the binary at all
        const why =
          code === 126 || code === 127
            ? `cannot run ${binary}: ${stderr.trim() || 'not found'}`
            : `${binary} exited (${code}) before the test guest ran${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
        setTimeout(() => settle(false, `${name}: ${why}`), 50);
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The accelerator to use for `want`. auto: KVM when a test guest runs under it, else TCG (with the
 * reason). kvm: KVM or a BackendError saying why not. tcg: TCG, no probe.
 */
export async function chooseAccel(want: 'auto' | Accel, opts: ProbeOptions = {}): Promise<AccelChoice> {
  return (await decideAccel(want, opts)).choice;
}

/** `auto` verdicts this process already has (per cache key): the VMs of one command share one. */
const decided = new Map<string, { at: number; p: Promise<{ choice: AccelChoice; probed: boolean }> }>();

/**
 * chooseAccel, and whether this call probed for it (`probed`: false when the verdict came from
 * the on-disk cache or from an earlier call of this process), so that its reason is said once,
 * when found out, and not at every start (src/qemu/start.ts logs a cached one at debug level).
 */
export async function decideAccel(want: 'auto' | Accel, opts: ProbeOptions = {}): Promise<{ choice: AccelChoice; probed: boolean }> {
  if (want === 'tcg') return { choice: { accel: 'tcg', reason: null }, probed: false };
  const key = `${whichBinary(opts.binary ?? 'qemu-system-x86_64', opts.env)}\0${release()}\0${opts.kvmDevice ?? '/dev/kvm'}`;
  if (want === 'kvm' || opts.fresh) return { choice: await decide(want, key, opts), probed: true };
  const memo = `${key}\0${opts.cacheFile ?? ''}`;
  const now = opts.now ?? Date.now;
  // a long-running watch asks again once a day, as a new process would
  const earlier = decided.get(memo);
  if (earlier && now() - earlier.at < ACCEL_VERDICT_TTL_MS) return { choice: (await earlier.p).choice, probed: false };
  const p = (async () => {
    if (opts.cacheFile) {
      const v = await readJson<Verdict>(opts.cacheFile, validateAccelVerdict);
      if (v && v.key === key && now() - v.at < ACCEL_VERDICT_TTL_MS) return { choice: v.choice, probed: false };
    }
    return { choice: await decide(want, key, opts), probed: true };
  })();
  decided.set(memo, { at: now(), p });
  p.catch(() => decided.delete(memo));
  return p;
}

async function decide(want: 'auto' | 'kvm', key: string, opts: ProbeOptions): Promise<AccelChoice> {
  const now = opts.now ?? Date.now;
  const kvm = await judgeKvm(opts);
  if (want === 'kvm' && !kvm.ok)
    throw new BackendError('KvmUnavailable', `accel kvm was requested but ${kvm.reason ?? 'KVM does not work'}; use accel: auto or tcg`);
  const choice: AccelChoice = kvm.ok ? { accel: 'kvm', reason: null } : { accel: 'tcg', reason: kvm.reason };
  if (opts.cacheFile) await writeJsonAtomic(opts.cacheFile, { key, at: now(), choice } satisfies Verdict).catch(() => undefined);
  return choice;
}

/**
 * Does KVM work? Its test guest must run within the timeout, and not slower than emulation:
 * on nested-virtualisation hosts the probe guest crawls through the BIOS for seconds under KVM
 * (TCG: a tenth of that) and real guests then hang, so a KVM that is slower than TCG (with a
 * 1 s floor) counts as not working.
 */
export async function judgeKvm(opts: ProbeOptions = {}, tcgResult?: ProbeResult): Promise<ProbeResult> {
  const kvm = await probeAccel('kvm', opts);
  if (!kvm.ok) return kvm;
  const tcg = tcgResult ?? (await probeAccel('tcg', opts));
  const limit = Math.max(1000, 3 * (tcg.ok ? tcg.ms : 1000));
  if (kvm.ms <= limit) return kvm;
  return {
    ...kvm,
    ok: false,
    reason: `KVM: /dev/kvm opens but a test guest took ${(kvm.ms / 1000).toFixed(1)} s to run under KVM${tcg.ok ? ` (TCG: ${(tcg.ms / 1000).toFixed(1)} s)` : ''}: KVM is slower than emulation here, real guests hang (nested virtualisation?)`,
  };
}

/** The binary's path as PATH resolves it, so a verdict about one QEMU is never used for another. */
function whichBinary(binary: string, env: NodeJS.ProcessEnv = process.env): string {
  if (binary.includes('/')) return binary;
  for (const dir of (env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, binary))) return join(dir, binary);
  }
  return binary;
}

/** Forget cached probes (tests). */
export function clearAccelCache(): void {
  cache.clear();
  decided.clear();
}
