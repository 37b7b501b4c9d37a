/**
 * Volume mounts as compose writes them:
 *
 *   "data:/var/lib/data"        named volume (declared in the top-level volumes)
 *   "data:/var/lib/data:ro"     read-only
 *   "./site:/srv/site"          host folder (paths starting with ".", "/" or "~")
 *   "~/src:/src:rw"
 *
 * Shared by every dialect loader. The host path is returned as written; loaders resolve it
 * (`resolvePath`) against their file. Never throws.
 */

export type ParsedVolume =
  { kind: 'named'; name: string; target: string; readOnly: boolean } | { kind: 'host'; source: string; target: string; readOnly: boolean };

export type VolumeSpecResult = { ok: true; value: ParsedVolume } | { ok: false; message: string; hint?: string };

/** Named volumes become files in the state dir: keep their names file-safe. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function fail(message: string, hint?: string): VolumeSpecResult {
  return hint ? { ok: false, message, hint } : { ok: false, message };
}

export function isHostPath(source: string): boolean {
  return source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
}

export function parseVolumeSpec(input: string): VolumeSpecResult {
  const spec = input.trim();
  if (spec === '') return fail('the volume is empty', 'write "name:/target" or "./folder:/target"');
  const parts = spec.split(':');
  if (parts.length === 1) {
    return fail(
      `"${spec}" has no target`,
      spec.startsWith('/')
        ? `anonymous volumes are not supported: name it, e.g. "data:${spec}", and declare it in the top-level volumes`
        : `write "${spec}:/mount/point"`,
    );
  }
  if (parts.length > 3) return fail(`"${spec}" has too many ":" parts`, 'the form is source:target[:ro]');
  const [source, target, mode] = parts;
  if (source === '') return fail(`the source of "${spec}" is empty`, 'write "name:/target" or "./folder:/target"');
  if (target === '') return fail(`the target of "${spec}" is empty`, `write "${source}:/mount/point"`);
  if (!target.startsWith('/')) {
    return fail(
      `the target "${target}" in "${spec}" is not an absolute path in the guest`,
      `write "${source}:/${target.replace(/^\.?\/*/, '')}"`,
    );
  }
  let readOnly = false;
  if (mode !== undefined) {
    if (mode !== 'ro' && mode !== 'rw') {
      return fail(
        `the mode "${mode}" in "${spec}" is not ro or rw`,
        `write "${source}:${target}:ro" (read-only) or "${source}:${target}" (read-write)`,
      );
    }
    readOnly = mode === 'ro';
  }
  if (isHostPath(source)) return { ok: true, value: { kind: 'host', source, target, readOnly } };
  if (!VOLUME_NAME_RE.test(source)) {
    return fail(
      `"${source}" is neither a volume name nor a host path`,
      `a host folder starts with "./", "/" or "~" (e.g. "./${source}"); a volume name uses letters, digits, "_", "." and "-"`,
    );
  }
  return { ok: true, value: { kind: 'named', name: source, target, readOnly } };
}
