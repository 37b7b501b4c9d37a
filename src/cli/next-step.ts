/**
 * Every error names the next step (issue 14 §4). Errors tend raises say it in their message or
 * carry it as `next`; this module adds it to the errors that come from outside tend's own
 * checks, where the entry can still tell what to do:
 *
 * - a permission error (EACCES, EPERM, EROFS) anywhere in the cause chain: which path, and the
 *   flag (`--state-dir`, no `--system`) or `sudo` that gets past it;
 * - commander's own usage errors (unknown option, missing argument): `tend help COMMAND`.
 */
import { dirname, relative, isAbsolute } from 'node:path';
import { CommanderError } from 'commander';
import { EXIT, TendError } from '../../schemas/errors.js';
import { stateRootOf } from './state-root.js';

const PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);

/** The first errno error with a path in `e`'s cause chain (at most 8 deep). */
function errnoOf(e: unknown): NodeJS.ErrnoException | null {
  let cur: unknown = e;
  for (let i = 0; i < 8 && cur; i++) {
    const err = cur as NodeJS.ErrnoException;
    if (typeof err.code === 'string' && PERMISSION.has(err.code) && typeof err.path === 'string') return err;
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

function inside(path: string, dir: string): boolean {
  const r = relative(dir, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** The value of a flag in argv (`--state-dir X` or `--state-dir=X`). */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) return argv[i + 1];
    if (argv[i]?.startsWith(flag + '=')) return argv[i]!.slice(flag.length + 1);
  }
  return undefined;
}

/** A permission error as a TendError naming the path and the way past it; null for any other error. */
export function permissionError(e: unknown, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): TendError | null {
  const err = errnoOf(e);
  if (!err) return null;
  const path = err.path as string;
  const why = err.code === 'EROFS' ? 'the file system is read-only' : 'permission denied';
  const message = `cannot ${err.syscall === 'mkdir' ? 'create' : 'access'} ${path}: ${why} (${err.code})`;
  const words = argv.slice(2);
  const stateDir = flagValue(words, '--state-dir');
  const root = stateRootOf({ ...(stateDir ? { stateDir } : {}), env });
  let next: string;
  if (inside(path, root) || inside(root, path)) {
    next =
      `tend's state folder ${root} is not writable for you: pass --state-dir DIR (or set TEND_STATE_DIR) to a folder you own, ` +
      `or make it yours: \`sudo chown -R "$(id -un)" ${root}\``;
  } else if ((words.includes('install') || words.includes('uninstall')) && words.includes('--system')) {
    const verb = words.includes('uninstall') ? 'uninstall' : 'install';
    next = `a system unit needs root: run \`sudo tend ${verb} --system\`, or use a user unit: \`tend ${verb}\` (without --system)`;
  } else {
    next = `make ${dirname(path)} writable for you (or run the command with sudo), or point tend elsewhere`;
  }
  return new TendError('PermissionDenied', message, EXIT.failure, { cause: e, next });
}

/** commander's usage error as tend reports it: a stable reason, the message without "error: ", the next step. */
export function usageOf(e: CommanderError, argv: readonly string[]): { reason: string; message: string; next: string } {
  const reason = 'Usage' + e.code.replace(/^commander\./, '').replace(/(^|[.-])([a-z])/g, (_, _p: string, c: string) => c.toUpperCase());
  const message = e.message.replace(/^error: /, '');
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  return { reason, message, next: word && e.code !== 'commander.unknownCommand' ? `tend help ${word}` : 'tend help' };
}
