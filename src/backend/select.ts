/**
 * Which backend runs a VM. Precedence: the command's flag (`--backend`, `--connect`), then the
 * VM's own file (`backend:`, `connect:`), then — for a VM that exists already — the backend that
 * holds it (the dispatcher knows), then the environment (`$TEND_BACKEND`, `$TEND_LIBVIRT_URI`),
 * then the default: qemu (VMFile.kdl and compose files, as vmctl and holos do; a vms.yml loader
 * writes `backend: auto`, ov's default) and, for libvirt, qemu:///system as root,
 * qemu:///session otherwise. `auto` is resolved by the dispatcher: libvirt when its socket
 * answers, else qemu.
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
  const file = vm.backend ?? (vm.connect ? 'libvirt' : undefined);
  if (file) return { kind: file, uri, source: 'file' };
  if (fromEnv) return { kind: fromEnv, uri, source: 'env' };
  return { kind: 'qemu', uri, source: 'default' };
}
