/** The state root a command works under: --state-dir, else $TEND_STATE_DIR, else $XDG_DATA_HOME/tend. No project loading (`tend ls` starts fast). */
import { resolve } from 'node:path';
import { stateRoot } from '../state/paths.js';

export function stateRootOf(g: { stateDir?: string; cwd?: string; env?: NodeJS.ProcessEnv }): string {
  return resolve(g.cwd ?? process.cwd(), g.stateDir ?? stateRoot(g.env ?? process.env));
}
