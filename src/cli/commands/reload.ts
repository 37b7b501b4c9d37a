/**
 * `tend reload` (vmctl): re-read the project files and converge. Converge already acts only on
 * what changed (plan is a diff of the files against what runs), so this is `tend up` under
 * vmctl's name, with the same options.
 */
import type { CliCommand } from '../command.js';
import { command as converge } from './converge.js';

export const command: CliCommand = {
  ...converge,
  name: 'reload',
  aliases: [],
  description: "re-read the project files and apply only what changed (vmctl's name for `tend up`)",
  examples: ['tend reload', 'tend reload --name web'],
};
