/**
 * What a command that brings VMs up or down shows while it works (issue 14 §1: progress, never silence).
 *
 * - **live** (stderr is a terminal, no --json): one line per VM, redrawn in place a few times a
 *   second (log-update), as docker compose does: the VM's state and for how long, what its step
 *   is doing now and for how long (a download's bar, "waiting for SSH on 127.0.0.1:40123").
 *   Other output (log records, provisioning output, hints) is written above those lines.
 * - **lines** (piped, or --json): what a step is doing is one log line when it changes; a VM that
 *   stays in one step gets a line every `intervalMs` saying so (not a line per tick), with a
 *   download's percentage.
 *
 * Events still reach the logger in lines mode (the caller logs them); in live mode a warning
 * event is also kept above the lines in full, since the VM's line is cut to the terminal's width.
 */
import { createLogUpdate } from 'log-update';
import type { ByteProgress, TendEvent, VmProgress } from '../../schemas/ports.js';
import { stateColor, type Colors } from './color.js';

export type LiveMode = 'live' | 'lines';

export interface LiveOptions {
  mode: LiveMode;
  /** where live lines are drawn (live mode) */
  stream: NodeJS.WritableStream & { columns?: number };
  color: Colors;
  /** lines mode: one line (through the logger) */
  say: (vm: string, message: string, level: 'info' | 'warn') => void;
  /** lines mode: a VM still in the same step gets a line this often (ms); live mode redraws 4 times a second */
  intervalMs: number;
  now?: () => number;
}

export interface LiveDisplay {
  readonly mode: LiveMode;
  /** a controller event: the VM's state changes (lines mode: the caller logs the event itself) */
  event(e: TendEvent): void;
  /** what a VM's step is doing now */
  progress(p: VmProgress): void;
  /** a hint about a VM that needs the user's eyes (a silent console): kept in full */
  warn(vm: string, message: string): void;
  /** a whole line of other output (a log record, provisioning output) */
  line(text: string): void;
  /** the last frame stays on the terminal; timers end */
  close(): void;
}

/** The state each event leaves a VM in, as the live line shows it. */
const STATE_OF: Partial<Record<TendEvent['reason'], string>> = {
  VmPreparing: 'Preparing',
  VmPrepared: 'Prepared',
  VmStarting: 'Starting',
  VmStarted: 'Running',
  VmProvisioning: 'Provisioning',
  VmProvisioned: 'Provisioned',
  VmReady: 'Ready',
  VmStopping: 'Stopping',
  VmStopped: 'Stopped',
  VmSuspended: 'Paused',
  VmResumed: 'Running',
  VmDestroying: 'Destroying',
  VmDestroyed: 'Destroyed',
  VmPruned: 'Destroyed',
  VmFailed: 'Failed',
  VmExited: 'Exited',
  RecreateRequired: 'RecreateRequired',
  OrphanFound: 'Orphan',
  DependencyNotReady: 'Blocked',
};

/** States a VM rests in: no "still ..." lines, no running clock. */
const SETTLED = new Set(['Ready', 'Stopped', 'Paused', 'Destroyed', 'Failed', 'RecreateRequired', 'Orphan', 'Blocked', 'Exited']);

interface Row {
  vm: string;
  state: string;
  since: number;
  note: string;
  noteSince: number;
  download?: ByteProgress;
  /** lines mode: when this VM last got a line */
  lastLine: number;
}

/** "7s", "1m05s", "1h02m" */
export function elapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

const mib = (n: number): string => (n / 1048576).toFixed(1);

/** "[##########..........]  50% 150.0/300.0 MiB" (a length-less download: "150.0 MiB") */
export function bar(p: ByteProgress, width = 20): string {
  if (!p.total) return `${mib(p.received)} MiB`;
  const frac = Math.min(1, p.received / p.total);
  const full = Math.round(frac * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${mib(p.received)}/${mib(p.total)} MiB`;
}

/** "42% of 300.0 MiB" for a line; "150.0 MiB so far" without a length */
function percent(p: ByteProgress): string {
  return p.total ? `${Math.floor(Math.min(1, p.received / p.total) * 100)}% of ${mib(p.total)} MiB` : `${mib(p.received)} MiB so far`;
}

/** The stream as log-update sees it: a terminal that reports no size (a pty nobody sized) gets 24x100. */
function sizedTerminal(stream: NodeJS.WritableStream & { columns?: number; rows?: number }): {
  write(s: string): boolean;
  rows: number;
  columns: number;
} {
  return {
    write: (s: string) => stream.write(s),
    get rows() {
      return stream.rows || 24;
    },
    get columns() {
      return stream.columns || 100;
    },
  };
}

/**
 * `tend image pull` on a terminal: one bar redrawn in place (at most 10 times a second); other
 * messages (checksum, verification) are written above it.
 */
export function createPullBar(stream: NodeJS.WritableStream & { columns?: number }): {
  onProgress(message: string): void;
  onDownload(p: ByteProgress): void;
  close(): void;
} {
  const draw = createLogUpdate(sizedTerminal(stream) as unknown as NodeJS.WriteStream);
  let current: ByteProgress | null = null;
  let last = 0;
  return {
    onProgress(message) {
      draw.clear();
      stream.write(message + '\n');
      if (current) draw(bar(current, 30));
    },
    onDownload(p) {
      current = p;
      const t = Date.now();
      if (t - last < 100 && !(p.total !== null && p.received >= p.total)) return;
      last = t;
      draw(bar(p, 30));
    },
    close() {
      if (current) draw(bar(current, 30));
      draw.done();
    },
  };
}

export function createLiveDisplay(o: LiveOptions): LiveDisplay {
  const now = o.now ?? Date.now;
  const c = o.color;
  const rows = new Map<string, Row>();
  const sized = sizedTerminal(o.stream);
  const draw = o.mode === 'live' ? createLogUpdate(sized as unknown as NodeJS.WriteStream) : null;
  let closed = false;

  const row = (vm: string): Row => {
    let r = rows.get(vm);
    if (!r) {
      const t = now();
      r = { vm, state: 'Pending', since: t, note: '', noteSince: t, lastLine: t };
      rows.set(vm, r);
    }
    return r;
  };

  const render = (): void => {
    if (!draw || closed || rows.size === 0) return;
    const t = now();
    const width = Math.max(40, sized.columns - 1);
    const nameW = Math.max(...[...rows.keys()].map((n) => n.length));
    const stateW = Math.max(...[...rows.values()].map((r) => r.state.length));
    const lines = [...rows.values()].map((r) => {
      const settled = SETTLED.has(r.state);
      const mark = r.state === 'Ready' ? '✔' : r.state === 'Failed' ? '✘' : settled ? '•' : '…';
      const clock = elapsed((settled ? r.noteSince : t) - r.since);
      const stepClock = !settled && r.note && t - r.noteSince >= 1000 && r.noteSince > r.since ? ` (${elapsed(t - r.noteSince)})` : '';
      const detail = `${r.download ? `${bar(r.download)}  ` : ''}${r.note}${stepClock}`;
      const head = `${mark} ${r.vm.padEnd(nameW)}  ${r.state.padEnd(stateW)}  ${clock.padStart(6)}  `;
      const plain = (head + detail).slice(0, width);
      // colour only the state (after cutting the plain text to the terminal's width)
      const paint = stateColor(c, r.state);
      const cut = plain.slice(head.length);
      return `${paint(mark)} ${r.vm.padEnd(nameW)}  ${paint(r.state.padEnd(stateW))}  ${c.dim(clock.padStart(6))}  ${cut}`;
    });
    draw(lines.join('\n'));
  };

  const timer = setInterval(
    () => {
      if (o.mode === 'live') return render();
      const t = now();
      for (const r of rows.values()) {
        if (SETTLED.has(r.state) || t - r.lastLine < o.intervalMs) continue;
        r.lastLine = t;
        const what = r.note ? `: ${r.note}${r.download ? `, ${percent(r.download)}` : ''} (${elapsed(t - r.noteSince)})` : '';
        o.say(r.vm, `still ${r.state.toLowerCase()} after ${elapsed(t - r.since)}${what}`, 'info');
      }
    },
    o.mode === 'live' ? 250 : Math.max(100, Math.min(1000, o.intervalMs / 4)),
  );
  timer.unref();

  const above = (text: string): void => {
    if (!draw || closed) {
      o.stream.write(text.endsWith('\n') ? text : text + '\n');
      return;
    }
    draw.clear();
    o.stream.write(text.endsWith('\n') ? text : text + '\n');
    render();
  };

  return {
    mode: o.mode,
    event(e) {
      if (!e.vm) return;
      const state = STATE_OF[e.reason];
      const r = row(e.vm);
      const t = now();
      if (state && state !== r.state) {
        r.state = state;
        r.since = t;
      }
      r.note = e.message;
      r.noteSince = t;
      delete r.download;
      r.lastLine = t; // the logger prints the event in lines mode
      if (draw && e.type === 'Warning') above(c.yellow(`${e.vm}: ${e.message}`));
      render();
    },
    progress(p) {
      const r = row(p.vm);
      const t = now();
      const changed = p.message !== r.note;
      if (changed) {
        r.note = p.message;
        r.noteSince = t;
      }
      if (p.download) r.download = p.download;
      else delete r.download;
      if (!draw && changed) {
        r.lastLine = t;
        o.say(p.vm, p.message, 'info');
      }
      render();
    },
    warn(vm, message) {
      const r = row(vm);
      r.lastLine = now();
      if (!draw) return o.say(vm, message, 'warn');
      r.note = `stuck? see above; tend logs ${vm} --console`;
      r.noteSince = now();
      above(c.yellow(`${vm}: ${message}`));
    },
    line(text) {
      above(text);
    },
    close() {
      if (closed) return;
      clearInterval(timer);
      render();
      closed = true;
      draw?.done();
    },
  };
}
