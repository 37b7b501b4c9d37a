/**
 * `tend logs NAME [--console | --provision] [-n N] [-f]`: a VM's log, like `docker logs`.
 *   (default)     the VM's events (from the project's events.jsonl)
 *   --console     the serial console output (console.log, written by QEMU, boot messages too)
 *   --provision   the provisioning output (provision.log)
 * -n N (or docker's --tail N) shows the last N lines; -f keeps following the file as it grows until interrupted.
 */
import type { TendEvent } from '../../../schemas/ports.js';
import { EXIT, NotFoundError, UsageError } from '../../../schemas/errors.js';
import { eventsPath } from '../../state/events.js';
import { vmFile } from '../../state/paths.js';
import { followFile, tailEvents } from '../../state/tail.js';
import type { CliCommand } from '../command.js';
import { inferVm, loadContext, type GlobalOptions } from '../context.js';
import { renderEventLine } from '../output.js';
import { readBackendRecord } from '../../backend/record.js';
import { hostLabel as hostOf } from '../../backend/host-label.js';
import { parseRemoteUri } from '../../libvirt/remote-uri.js';
import { createVirsh } from '../../libvirt/virsh.js';

export type LogSource = 'events' | 'console' | 'provision';

export interface LogsCommandOptions extends GlobalOptions {
  name?: string;
  source?: LogSource;
  lines?: number;
  follow?: boolean;
  /** receives each line (without newline) */
  write: (line: string) => void;
  pollMs?: number;
}

export interface LogsResult {
  vm: string;
  source: LogSource;
  path: string;
  /** the log exists (false: nothing was written yet) */
  found: boolean;
}

export async function logsCommand(o: LogsCommandOptions): Promise<LogsResult> {
  if (o.lines !== undefined && (!Number.isInteger(o.lines) || o.lines < 0))
    throw new UsageError(`-n wants a number of lines, got ${o.lines}`, 'BadLines');
  const ctx = await loadContext({ ...o, fromState: true }, o.name);
  const vm = inferVm(ctx.project, o.name, 'logs');
  const source = o.source ?? 'events';
  const path =
    source === 'events' ? eventsPath(ctx.projDir) : vmFile(ctx.projDir, vm, source === 'console' ? 'consoleLog' : 'provisionLog');
  const common = { follow: o.follow ?? false, ...(o.signal ? { signal: o.signal } : {}), ...(o.pollMs ? { pollMs: o.pollMs } : {}) };
  let found = true;
  if (source === 'events') {
    const show = (e: TendEvent): void => o.write(o.json ? JSON.stringify(e) : renderEventLine(e));
    const follow = o.follow ?? false;
    const events = await tailEvents(ctx.projDir, {
      vm,
      ...(o.lines !== undefined ? { tail: o.lines } : {}),
      follow,
      onEvent: show,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
    });
    // following already showed them as they were read
    if (!follow) for (const e of events) show(e);
  } else {
    if (source === 'console') await fetchRemoteConsole(ctx.projDir, vm, path, o);
    found = await followFile(path, { ...common, ...(o.lines !== undefined ? { lines: o.lines } : {}), onLine: o.write });
  }
  if (!found && source !== 'events') {
    throw new NotFoundError(
      'NoLog',
      source === 'provision'
        ? `${vm} has no provisioning log yet (${path}): nothing was provisioned`
        : `${vm} has no console log yet (${path}): it was never started`,
    );
  }
  return { vm, source, path, found };
}

/** -n/--tail's value: a number of lines, or "all" (docker's default) for every line. */
const lineCount = (v: string): number | 'all' => (v === 'all' ? 'all' : Number.parseInt(v, 10));

/**
 * A VM on a remote libvirt host: its console log is a volume in the host's pool (virtlogd writes
 * it there); copy it to the VM's local console.log first. Following it is not supported yet.
 */
async function fetchRemoteConsole(projDir: string, vm: string, path: string, o: LogsCommandOptions): Promise<void> {
  const rec = await readBackendRecord(projDir, vm);
  if (rec?.backend !== 'libvirt' || !rec.uri || !rec.domain || parseRemoteUri(rec.uri) === null) return;
  if (o.follow)
    throw new UsageError(`${vm} runs on ${hostOf(rec)}: -f on its console log is not supported yet (run without -f)`, 'BadUsage');
  const { downloadConsoleLog } = await import('../../libvirt/remote-files.js');
  await downloadConsoleLog(createVirsh({ uri: rec.uri, env: o.env ?? process.env }), rec.domain, path, o.signal);
}

export const command: CliCommand = {
  name: 'logs',
  aliases: ['log'],
  description: "a VM's log: its events (default), its serial console, or its provisioning output",
  examples: ['tend logs web', 'tend logs web --console -f', 'tend logs web --provision -n 50', 'tend logs -f --tail 20 web --console'],
  configure: (c) =>
    c
      .argument('[name]', 'VM name (optional when the project has one VM)')
      .option('--console', 'the serial console log (boot messages, login prompt)')
      .option('--provision', "the provisioning log (every step's output)")
      .option('-n, --lines <n>', 'only the last N lines', lineCount)
      .option('--tail <n>', 'the same as -n (docker logs; "all" shows every line)', lineCount)
      .option('-f, --follow', 'keep printing what is appended, until Ctrl-C'),
  async run({ g, args, opts, io }) {
    const name = args[0] as string | undefined;
    const o = opts as { console?: boolean; provision?: boolean; lines?: number | 'all'; tail?: number | 'all'; follow?: boolean };
    const lines = o.lines ?? o.tail;
    if (o.console && o.provision) throw new UsageError('--console and --provision show different logs: pick one', 'BadUsage');
    await logsCommand({
      ...g,
      ...(name ? { name } : {}),
      source: o.console ? 'console' : o.provision ? 'provision' : 'events',
      ...(lines !== undefined && lines !== 'all' ? { lines } : {}),
      follow: o.follow ?? false,
      write: (line) => io.stdout(line + '\n'),
    });
    return EXIT.ok;
  },
};
