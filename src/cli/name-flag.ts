/**
 * vmctl's `--name NAME` on the verbs that take one VM (`tend start --name web` = `tend start
 * web`): vmctl's book says --name targets a VM on any command. Both forms together must agree.
 */
import { UsageError } from '../../schemas/errors.js';

export const NAME_FLAG = '--name <vm>';
export const NAME_FLAG_HELP = 'the VM, as the NAME argument (vmctl spelling)';

export function vmName(verb: string, positional: string | undefined, flag: string | undefined, required: true): string;
export function vmName(verb: string, positional: string | undefined, flag: string | undefined, required: false): string | undefined;
export function vmName(verb: string, positional: string | undefined, flag: string | undefined, required: boolean): string | undefined {
  if (positional !== undefined && flag !== undefined && positional !== flag) {
    throw new UsageError(`tend ${verb}: the VM is "${positional}" or --name "${flag}", not both`, 'ConflictingOptions');
  }
  const name = flag ?? positional;
  if (required && name === undefined)
    throw new UsageError(`tend ${verb} needs a VM name: tend ${verb} NAME (or --name NAME)`, 'MissingArgument');
  return name;
}
