/**
 * How a command that logs talks to the terminal: the logger (human lines or JSON lines), live
 * guest output, and for the commands that bring VMs up or down the live display (src/cli/live.ts): a
 * line per VM redrawn in place on a terminal, periodic plain lines when piped or with --json.
 */
import type { CliIo } from './command.js';
import type { GlobalOptions } from './context.js';
import { colorEnabled, colors } from './color.js';
import { createLiveDisplay } from './live.js';
import { progressIntervalMs } from './progress-interval.js';

/** A terminal that can be redrawn in place (a TTY that is not TERM=dumb). */
export function liveTerminal(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

/**
 * Fill `g.log`, `g.onGuestOutput` and, with `live`, `g.display` / `g.onProgress`. Returns the io
 * the command must use: with a live display, stdout output first ends the display (its last
 * frame stays) and stderr lines are written above the VM lines.
 */
export async function setupTerminal(g: GlobalOptions, io: CliIo, live: boolean, env: NodeJS.ProcessEnv = process.env): Promise<CliIo> {
  const { createLogger } = await import('../log.js');
  const c = colors(colorEnabled(process.stderr, env));
  const mode = live && !g.json && liveTerminal(process.stderr, env) ? 'live' : 'lines';
  const display = live
    ? createLiveDisplay({
        mode,
        stream: process.stderr,
        color: c,
        say: (vm, message, level) => log[level]({ vm }, message),
        intervalMs: progressIntervalMs(env),
      })
    : undefined;
  // one-shot commands log human lines unless --json (CI logs read better); `watch` decides by TTY
  const log = createLogger({
    json: g.json ?? false,
    verbose: g.verbose ?? false,
    tty: true,
    color: c,
    ...(display?.mode === 'live' ? { stream: { write: (l: string) => (display.line(l), true) } as unknown as NodeJS.WritableStream } : {}),
  });
  g.log = log;
  if (display) {
    g.display = display;
    g.onVmProgress = (p) => display.progress(p);
  }
  // provisioning output streams live: "web | line" on a terminal, a log record with --json
  g.onGuestOutput = (vm, text, stream) => {
    if (stream === 'warning') return display ? display.warn(vm, text) : void log.warn({ vm }, text);
    if (stream === 'status') return display ? display.progress({ vm, message: text }) : void log.info({ vm }, text);
    if (g.json) return void log.info({ vm, stream }, text);
    if (display?.mode === 'live') display.line(`${vm} | ${text}`);
    else io.err(`${vm} | ${text}`);
  };
  if (display?.mode !== 'live') return io;
  const end = (): void => display.close();
  return {
    out: (s) => (end(), io.out(s)),
    json: (v) => (end(), io.json(v)),
    stdout: (b) => (end(), io.stdout(b)),
    err: (s) => display.line(s),
    stderr: (b) => display.line(String(b)),
  };
}
