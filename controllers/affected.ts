/**
 * Which VMs a change affects, so `tend watch` reconciles only those. Pure: it compares the last
 * valid project with the new one and looks at the files each VM references (provision scripts
 * and uploads, raw user-data, a local image, a private key).
 */
import type { Project, VmSpec } from '../schemas/model.js';
import { stableJson } from './plan.js';

/** Absolute paths of the host files a VM's desired state depends on (besides the project files). */
export function referencedPaths(vm: VmSpec): string[] {
  const out: string[] = [];
  if (vm.image.kind === 'path') out.push(vm.image.ref);
  if (vm.cloudInit?.userData) out.push(vm.cloudInit.userData);
  if (vm.ssh.privateKey) out.push(vm.ssh.privateKey, `${vm.ssh.privateKey}.pub`);
  for (const step of vm.provision) {
    if ('script' in step) out.push(step.script);
    else if ('source' in step) out.push(step.source);
  }
  return [...new Set(out)];
}

/**
 * Every file `tend watch` must watch for this project: its own files, the `.env` next to a compose
 * file (its variables are interpolated into it), and everything they reference.
 */
export function watchedPaths(project: Project): string[] {
  const dotenv = project.files.some((f) => /\.ya?ml$/i.test(f) && !/(^|\/)(vms|holos)\.ya?ml$/i.test(f)) ? [`${project.dir}/.env`] : [];
  return [...new Set([...project.files, ...dotenv, ...project.vms.flatMap(referencedPaths)])];
}

export interface Affected {
  /** declared VMs to reconcile */
  vms: string[];
  /** VMs that are no longer declared (orphans now) */
  removed: string[];
}

/**
 * The VMs a change touches: those whose spec differs between `prev` and `next` (added ones
 * included), those that reference one of `changedFiles` (content changed, spec the same), and
 * those that were removed. `prev` null (first load) means every VM.
 */
export function affectedVms(prev: Project | null, next: Project, changedFiles: readonly string[]): Affected {
  if (!prev) return { vms: next.vms.map((v) => v.name), removed: [] };
  const before = new Map(prev.vms.map((v) => [v.name, v]));
  const changed = new Set(changedFiles);
  const vms: string[] = [];
  for (const vm of next.vms) {
    const old = before.get(vm.name);
    if (!old || stableJson(old) !== stableJson(vm) || referencedPaths(vm).some((p) => changed.has(p))) vms.push(vm.name);
  }
  const names = new Set(next.vms.map((v) => v.name));
  const removed = prev.vms.map((v) => v.name).filter((n) => !names.has(n));
  return { vms, removed };
}

/** VMs that depend on any of `roots`, directly or through others (roots excluded). */
export function dependentsOf(project: Project, roots: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const frontier = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const vm of project.vms) {
      if (out.has(vm.name) || frontier.has(vm.name)) continue;
      if (vm.dependsOn.some((d) => frontier.has(d) || out.has(d))) {
        out.add(vm.name);
        grew = true;
      }
    }
  }
  return out;
}
