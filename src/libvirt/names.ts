/**
 * Domain names: one libvirt connection holds the VMs of many projects (and other tools'), so a
 * domain is named `tend-<project>-<hash of the project directory>-<vm>` — the same key as the
 * project's state folder, so two checkouts of one project never share a domain.
 */
import type { Project } from '../../schemas/model.js';
import { shortHash } from '../state/paths.js';

export function domainPrefix(project: Pick<Project, 'name' | 'dir'>): string {
  return `tend-${project.name}-${shortHash(project.dir)}-`;
}

export function domainName(project: Pick<Project, 'name' | 'dir'>, vm: string): string {
  return `${domainPrefix(project)}${vm}`;
}

/** The prefix of a project's named volumes in a remote host's pool (pool.ts). */
export function remoteVolumePrefix(project: Pick<Project, 'name' | 'dir'>): string {
  return `vol-${project.name}-${shortHash(project.dir)}-`;
}

/** A named volume in a remote host's pool: `vol-<project>-<hash>-<volume>.qcow2`. */
export function remoteVolumeName(project: Pick<Project, 'name' | 'dir'>, volume: string): string {
  return `${remoteVolumePrefix(project)}${volume}.qcow2`;
}
