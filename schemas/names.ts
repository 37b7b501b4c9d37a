/** The one name pattern of VMs, projects and host names, and "did you mean". */
/** VM, project and host names: lower-case letters, digits and "-", 1-63 characters (a DNS label). */
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
export const NAME_RE = new RegExp(NAME_PATTERN);

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
  return `no VM named "${name}" in project ${project}${hint ? `: did you mean "${hint}"?` : ''} (VMs: ${known.join(', ') || 'none'})`;
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
