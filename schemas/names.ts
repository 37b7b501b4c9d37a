/** The one name pattern of VMs, projects and host names, and "did you mean". */
/** VM, project and host names: lower-case letters, digits and "-", 1-63 characters (a DNS label). */
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
export const NAME_RE = new RegExp(NAME_PATTERN);

/**
 * Strings from a project file that reach a command line or a guest's configuration have one of
 * these forms, checked by the loaders at the value's position and again by the canonical schema.
 * None can start with "-", so none can become a command-line option.
 */
/** The user tend logs in as over SSH (POSIX portable user name; `-l USER` on ssh's command line). */
export const SSH_USER_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$';
/** A Linux user cloud-init creates (useradd's default NAME_REGEX, at most 32 characters). */
export const LINUX_USER_PATTERN = '^[a-z_][a-z0-9_-]{0,31}$';
/** A host name: letters, digits, "-" and "." (at most 253 characters). */
export const HOSTNAME_PATTERN = '^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$';
/** A network interface (bridge) name: at most 15 characters. */
export const IFNAME_PATTERN = '^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,14}$';
/** A QEMU machine type ("q35", "pc-i440fx-8.2", "virt"). */
export const MACHINE_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$';
/** A QEMU CPU model with optional features ("host", "max", "Haswell,-hle"). */
export const CPU_MODEL_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9._+=,-]{0,255}$';
/** An OS family hint (holos image_os). */
export const OS_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

/** Why `name` cannot be a VM/file/host name, or null when it can. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'the name is empty';
  if (name.length > 63) return `the name "${name}" is longer than 63 characters`;
  if (NAME_RE.test(name)) return null;
  if (/[A-Z]/.test(name) && NAME_RE.test(name.toLowerCase()))
    return `the name "${name}" has upper-case letters (host names are lower-case)`;
  return `the name "${name}" cannot be a file name and a host name: use lower-case letters, digits and "-" (not at either end)`;
}

/** Suggest the closest candidate (Damerau-free Levenshtein, distance <= max(2, len/3)). */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestD <= limit ? best : undefined;
}

/**
 * The error for a VM name that is neither declared nor known from state: names the project,
 * suggests the closest name, lists the VMs. The one "no VM named" message.
 */
export function unknownVmMessage(name: string, project: string, known: readonly string[]): string {
  const hint = didYouMean(name, known);
  return `no VM named "${name}" in project "${project}"${hint ? `: did you mean "${hint}"?` : ''} (VMs: ${known.join(', ') || 'none'})`;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}
