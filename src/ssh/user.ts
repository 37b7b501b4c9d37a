/**
 * Which user tend logs in as (docs/images.md, "SSH user"), first match wins:
 *   1. vm.ssh.user            (the file's ssh { user } / ssh.user)
 *   2. vm.cloudInit.user      (the user cloud-init is told to create)
 *   3. the image's convention: the catalog entry's user, else the OS hint (image.os:
 *      debian→debian, ubuntu→ubuntu, fedora→fedora, alpine→alpine, ...)
 *   4. "tend"
 * With cloud-init on, tend creates that user itself, so any answer works on any cloud image.
 */
import type { VmSpec } from '../../schemas/model.js';
import { catalogEntry, OS_USERS } from '../images/catalog.js';

export const DEFAULT_SSH_USER = 'tend';

/** The image's OS family: the catalog entry's, else the declared hint (lower-cased), else null. */
export function imageOs(vm: VmSpec): string | null {
  if (vm.image.kind === 'catalog') {
    const e = catalogEntry(vm.image.ref);
    if (e) return e.os;
  }
  return vm.image.os ? vm.image.os.trim().toLowerCase() : null;
}

export function sshUser(vm: VmSpec): string {
  if (vm.ssh.user) return vm.ssh.user;
  if (vm.cloudInit?.user) return vm.cloudInit.user;
  if (vm.image.kind === 'catalog') {
    const e = catalogEntry(vm.image.ref);
    if (e) return e.user;
  }
  const os = imageOs(vm);
  if (os && OS_USERS[os]) return OS_USERS[os];
  return DEFAULT_SSH_USER;
}
