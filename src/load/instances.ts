/**
 * Named instances, ov's `-i NAME` (`ov vm create arch -i prod`): more VMs from one declared VM,
 * each named `<vm>-<instance>` with its own folder (disk, seed, keys, instance-id) and its own
 * host ports. An instance is created by `tend up -i NAME` and recorded in the project's state
 * folder (src/state/instances.ts) until `tend down --destroy` / `tend destroy` removes it; every
 * load of the project (converge, watch, plan, ps) expands the recorded instances here, so
 * `tend watch` keeps them running like declared VMs. Pure: no disk, no process.
 *
 * Ports: a fixed host port of the declared VM (vms.yml `ssh.port`, a compose `"8080:80"`) would
 * collide between the VM and its instances, so an instance gets every host port allocated by
 * tend (a free port, persisted so it stays stable; `tend ps` and `tend ssh` know it). The cloud-init
 * hostname, when the file sets one, becomes `<hostname>-<instance>`; without one it is the
 * instance's VM name, as for every VM.
 */
import type { Project, SourceLocation, VmSpec } from '../../schemas/model.js';
import { UsageError } from '../../schemas/errors.js';
import { nameProblem } from '../../schemas/names.js';

/** declared VM name → its instance names */
export type InstanceMap = Record<string, string[]>;

export interface InstanceOf {
  /** the declared VM it was made from */
  vm: string;
  instance: string;
}

export function instanceVmName(vm: string, instance: string): string {
  return `${vm}-${instance}`;
}

/** The instance name's own problem (it must be a valid VM name itself), or null. */
export function instanceNameProblem(instance: string): string | null {
  if (instance.length === 0) return 'the instance name is empty';
  const p = nameProblem(instance);
  return p ? `instance name "${instance}": use lowercase letters, digits and "-" (it becomes part of the VM name <vm>-${instance})` : null;
}

/** One instance of `vm`: its own name and host ports, otherwise the same desired state. */
export function instanceSpec(vm: VmSpec, instance: string): VmSpec {
  const name = instanceVmName(vm.name, instance);
  const spec: VmSpec = structuredClone(vm);
  spec.name = name;
  spec.ports = spec.ports.map((p) => ({ ...p, hostPort: null }));
  if (spec.cloudInit?.hostname) spec.cloudInit.hostname = `${spec.cloudInit.hostname}-${instance}`;
  return spec;
}

export interface Expanded {
  project: Project;
  origins: Record<string, SourceLocation>;
  /** instance VM name → what it was made from */
  instances: Record<string, InstanceOf>;
}

/**
 * The project with each recorded instance added after its VM. An instance of a VM the files no
 * longer declare is left out (its folder is an orphan, as for any VM removed from the files). A
 * name that clashes with a declared VM, or is not a valid VM name, is a UsageError.
 */
export function expandInstances(project: Project, origins: Record<string, SourceLocation>, wanted: InstanceMap): Expanded {
  const declared = new Set(project.vms.map((v) => v.name));
  const vms: VmSpec[] = [];
  const outOrigins = { ...origins };
  const instances: Record<string, InstanceOf> = {};
  for (const vm of project.vms) {
    vms.push(vm);
    for (const inst of [...new Set(wanted[vm.name] ?? [])].sort()) {
      const why = instanceNameProblem(inst);
      if (why) throw new UsageError(why, 'BadInstance');
      const name = instanceVmName(vm.name, inst);
      const long = nameProblem(name);
      if (long) throw new UsageError(`instance ${inst} of ${vm.name}: ${long}`, 'BadInstance');
      if (declared.has(name) || instances[name]) {
        throw new UsageError(
          `instance ${inst} of ${vm.name} would be named ${name}, and the project declares a VM of that name (or another instance has it): choose another instance name`,
          'BadInstance',
        );
      }
      vms.push(instanceSpec(vm, inst));
      instances[name] = { vm: vm.name, instance: inst };
      if (origins[vm.name]) outOrigins[name] = origins[vm.name];
    }
  }
  // an instance's dependencies are its VM's (the instance depends on what its VM depends on)
  return { project: { ...project, vms }, origins: outOrigins, instances };
}

/**
 * The VM names a command with `-i INSTANCE` acts on: `<name>-<instance>` for each name given, else
 * every declared VM's instance of that name (`tend up -i prod`: all of them; other verbs: those
 * that exist).
 */
export function instanceTargets(
  project: Project,
  instances: Record<string, InstanceOf>,
  instance: string,
  names?: readonly string[],
): string[] {
  if (names && names.length > 0) return names.map((n) => instanceVmName(n, instance));
  return Object.entries(instances)
    .filter(([, i]) => i.instance === instance)
    .map(([n]) => n)
    .filter((n) => project.vms.some((v) => v.name === n));
}

/** `wanted` plus `instance` for `vms` (the declared VMs `tend up -i` names, or all of them). */
export function addInstance(project: Project, wanted: InstanceMap, instance: string, vms?: readonly string[]): InstanceMap {
  const why = instanceNameProblem(instance);
  if (why) throw new UsageError(why, 'BadInstance');
  const out: InstanceMap = { ...wanted };
  const declared = project.vms.map((v) => v.name);
  for (const vm of vms && vms.length > 0 ? vms : declared) {
    if (!declared.includes(vm)) continue; // the caller reports unknown names
    out[vm] = [...new Set([...(out[vm] ?? []), instance])].sort();
  }
  return out;
}

/** `wanted` without the instances whose VM names are in `names`. */
export function removeInstances(wanted: InstanceMap, names: readonly string[]): InstanceMap {
  const gone = new Set(names);
  const out: InstanceMap = {};
  for (const [vm, list] of Object.entries(wanted)) {
    const keep = list.filter((i) => !gone.has(instanceVmName(vm, i)));
    if (keep.length > 0) out[vm] = keep;
  }
  return out;
}
