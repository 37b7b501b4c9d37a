/** Units in project files and flags: durations, memory and disk sizes. Pure functions. */
/**
 * Parse a duration as compose writes them ("30s", "1m30s", "500ms", "2h") or a bare number of
 * seconds. Returns seconds, or null when it is not a duration.
 */
export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : null;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : m[2] === 'ms' ? n / 1000 : n / 1e6;
    matched = re.lastIndex;
  }
  return matched === s.length && s.length > 0 ? total : null;
}

/**
 * A memory size written with a unit ("2G", "512M", "2GiB") → MiB, for the hint that says what to
 * write instead. null when it is not such a size.
 */
export function memoryWithUnitToMiB(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt])(i?b)?$/i.exec(s.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const mult = { k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 }[m[2].toLowerCase() as 'k' | 'm' | 'g' | 't'];
  const mib = n * mult;
  return Number.isInteger(mib) ? mib : Math.round(mib);
}

/** A disk size ("20G", "20GiB", 20) → GiB integer, or null. */
export function diskSizeToGiB(v: string | number): number | null {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*([mgt])?(i?b)?$/i.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'g').toLowerCase();
  return unit === 'g' ? n : unit === 't' ? n * 1024 : n / 1024;
}
