/**
 * Which backend runs a VM: the one function every command and the dispatcher ask. Precedence,
 * highest first (docs/libvirt.md "Selecting it"):
 *   1. the command's flag (`--backend`, `--connect`; a URI alone selects libvirt): the user's
 *      choice for this command beats everything written down, also a VM's own pin;
 *   2. the VM's pin in its file (`backend: qemu|libvirt`, or a `connect:` URI);
 *   3. for a VM that exists already, the backend that holds it (the dispatcher knows: the
 *      environment and the defaults only place new VMs, so a VM never moves behind your back);
 *   4. the environment (`$TEND_BACKEND`, `$TEND_LIBVIRT_URI`): the user's default, like ov's
 *      `OV_VM_BACKEND` setting;
 *   5. the file's `backend: auto` or the dialect's default: `auto` for vms.yml (ov's default;
 *      an explicit `backend: auto` means the same: "the host decides", so the environment
 *      overrides it), `qemu` for VMFile.kdl and compose files (as vmctl and holos do).
 * `auto` is resolved by the dispatcher: libvirt when its socket answers, else qemu. The URI: flag,
 * file, `$TEND_LIBVIRT_URI`, else qemu:///system as root, qemu:///session otherwise.
 */
import type { VmSpec } from '../../schemas/model.js';
import { UsageError } from '../../schemas/errors.js';
import { defaultUri } from '../libvirt/connect.js';

export type BackendKind = 'qemu' | 'libvirt' | 'auto';
export const BACKEND_KINDS: readonly BackendKind[] = ['qemu', 'libvirt', 'auto'];

/** The command line's choice (both optional). */
export interface BackendFlags {
  backend?: BackendKind;
  connect?: string;
}

export interface Wanted {
  kind: BackendKind;
  /** the libvirt URI (also for auto: the one probed) */
  uri: string;
  /**
   * Where the choice came from. A VM created earlier stays on the backend that holds it unless
   * the flag or its file says otherwise: the environment and the default only place new VMs.
   */
  source: 'flag' | 'file' | 'env' | 'default';
}

export function parseBackendKind(v: string, what: string): BackendKind {
  if ((BACKEND_KINDS as readonly string[]).includes(v)) return v as BackendKind;
  throw new UsageError(`${what} must be one of ${BACKEND_KINDS.join(', ')} (got "${v}")`, 'BadBackend');
}

export function wantedBackend(vm: Pick<VmSpec, 'backend' | 'connect'>, flags: BackendFlags, env: NodeJS.ProcessEnv): Wanted {
  const fromEnv = env.TEND_BACKEND ? parseBackendKind(env.TEND_BACKEND, '$TEND_BACKEND') : undefined;
  const uri = flags.connect ?? vm.connect ?? (env.TEND_LIBVIRT_URI || defaultUri());
  // a connection URI only means something to libvirt: naming one selects it
  const flag = flags.backend ?? (flags.connect ? 'libvirt' : undefined);
  if (flag) return { kind: flag, uri, source: 'flag' };
  // `backend: auto` pins nothing: it is the file saying "the host decides"
  const pinned = vm.backend === 'auto' ? undefined : (vm.backend ?? (vm.connect ? 'libvirt' : undefined));
  if (pinned) return { kind: pinned, uri, source: 'file' };
  if (fromEnv) return { kind: fromEnv, uri, source: 'env' };
  return { kind: vm.backend === 'auto' ? 'auto' : 'qemu', uri, source: 'default' };
}
