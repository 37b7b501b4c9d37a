/**
 * The command line before commander sees it: which command it names (so main.ts loads only that
 * command's module), and the `-f` that means `--follow` after logs/events.
 */

/** Global options of the CLI that take a value (they may come before the command name). */
const GLOBAL_WITH_VALUE = new Set(['-f', '--file', '-p', '--project', '--state-dir', '--lock-timeout']);

/**
 * The command word of `argv` (process.argv: node, script, then the words): the first word that
 * is neither an option nor a global option's value; for `tend help NAME`, NAME. Null for none.
 */
export function commandWord(argv: readonly string[]): string | null {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return null;
    if (GLOBAL_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    if (a === 'help') return argv.slice(i + 1).find((w) => !w.startsWith('-')) ?? null;
    return a;
  }
  return null;
}

/**
 * `-f` is the global `--file` everywhere, except after `logs` and `events`, where users type it
 * for `--follow` (docker, kubectl, tail). The parser lets global options win anywhere on the
 * line, so the entry rewrites that one `-f` before parsing. Nothing after `--` is touched.
 */
export function rewriteFollowFlag(argv: readonly string[], commands: readonly string[] = ['logs', 'events']): string[] {
  const out = [...argv];
  let inCommand = false;
  for (let i = 2; i < out.length; i++) {
    const a = out[i];
    if (a === '--') break;
    if (!inCommand) {
      if (GLOBAL_WITH_VALUE.has(a)) {
        i++;
        continue;
      }
      if (a.startsWith('-')) continue;
      if (!commands.includes(a)) break;
      inCommand = true;
      continue;
    }
    if (a === '-f') out[i] = '--follow';
  }
  return out;
}
