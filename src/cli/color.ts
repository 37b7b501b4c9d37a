/**
 * Colour on the terminal, where it helps (VM states, warnings, errors): picocolors' formatters,
 * switched on by tend's own decision for the stream it writes to (picocolors alone looks at
 * stdout, while tend's messages go to stderr). FORCE_COLOR wins (as in Node.js), then NO_COLOR
 * (https://no-color.org: present and not empty), then the stream must be a terminal that is not
 * TERM=dumb.
 */
import pc from 'picocolors';
import type { Colors } from 'picocolors/types.js';

export type { Colors };

export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

export function colors(enabled: boolean): Colors {
  return pc.createColors(enabled);
}

/** A VM state in its colour: green when done, red when failed, yellow when it needs a decision. */
export function stateColor(c: Colors, state: string): (s: string) => string {
  switch (state) {
    case 'Ready':
      return c.green;
    case 'Failed':
      return c.red;
    case 'Blocked':
    case 'RecreateRequired':
    case 'Orphan':
      return c.yellow;
    case 'Stopped':
    case 'Destroyed':
    case 'Paused':
      return c.dim;
    default:
      return c.cyan;
  }
}
