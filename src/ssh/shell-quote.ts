/**
 * POSIX-shell quoting of one word. Its own module: the loaders quote words too, and must not
 * load ssh2 (src/ssh/exec.ts) to do it (`tend validate` starts faster without it).
 */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
