/**
 * vmctl's `--name NAME` on the verbs that take one VM (`tend start --name web` = `tend start
 * web`): vmctl's book says --name targets a VM on any command. Both forms together must agree.
 */
import { UsageError } from '../../schemas/errors.js';
import { instanceVmName } from '../load/instances.js';

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

/**
 * The VMs of a verb that takes several (`tend stop web db`): the NAME arguments, or vmctl's
 * `--name NAME` (one VM; with arguments only when they are that same one). At least one.
 */
export function vmNames(verb: string, positional: readonly string[], flag: string | undefined): string[] {
  if (positional.length > 1 && flag !== undefined) {
    throw new UsageError(`tend ${verb}: the VMs are "${positional.join(' ')}" or --name "${flag}", not both`, 'ConflictingOptions');
  }
  if (positional.length > 1) return [...new Set(positional)];
  return [vmName(verb, positional[0], flag, true)];
}

/** ov's `-i NAME` (named instance): the VM `<vm>-NAME` made by `tend up -i NAME` (src/load/instances.ts). */
export const INSTANCE_FLAG = '-i, --instance <name>';
export const INSTANCE_FLAG_HELP = 'the named instance NAME of the VM: acts on <vm>-NAME (ov -i)';

/** The VM a one-VM verb acts on, with `-i`: `<name>-<instance>`. */
export function withInstance(name: string, instance: string | undefined): string {
  return instance === undefined ? name : instanceVmName(name, instance);
}
