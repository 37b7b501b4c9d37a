/**
 * The `.env` file next to a compose-style project file, read with compose's rules: `NAME=VALUE`
 * lines (`export ` allowed), `#` comments and blank lines, unquoted values trimmed and cut at
 * ` #`, single-quoted values literal, double-quoted values with \n \r \t \\ \" escapes;
 * unquoted and double-quoted values are interpolated (earlier lines and the environment).
 * Values span one line. Variables of the environment win over the file's (compose's precedence).
 * Hand-written rather than dotenv's parse: compose interpolates unquoted and double-quoted values
 * but not single-quoted ones, which dotenv's result cannot tell apart, and errors need a line.
 */
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { interpolate } from './interpolate.js';

export interface DotEnv {
  vars: Map<string, string>;
  diagnostics: Diagnostic[];
}

const LINE = /^(\s*)(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/;

export function parseDotEnv(file: string, text: string, env: NodeJS.ProcessEnv): DotEnv {
  const vars = new Map<string, string>();
  const diagnostics: Diagnostic[] = [];
  const err = (line: number, column: number, message: string, hint?: string): void => {
    diagnostics.push({ file, line, column, message, ...(hint ? { hint } : {}), severity: 'error' });
  };
  const lookup = (name: string): string | undefined => env[name] ?? vars.get(name);
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, n) => {
    const line = n + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const m = LINE.exec(raw);
    if (!m) {
      err(line, raw.length - raw.trimStart().length + 1, 'expected NAME=VALUE', 'names are letters, digits and _; # starts a comment');
      return;
    }
    const name = m[2];
    const rest = m[3];
    const valueCol = raw.length - rest.length + 1;
    let value: string;
    let interpolated = true;
    if (rest.startsWith("'") || rest.startsWith('"')) {
      const q = rest[0];
      let out = '';
      let j = 1;
      let closed = false;
      for (; j < rest.length; j++) {
        const c = rest[j];
        if (c === '\\' && j + 1 < rest.length) {
          const e = rest[j + 1];
          if (e === q) out += q;
          else if (q === '"' && e === 'n') out += '\n';
          else if (q === '"' && e === 'r') out += '\r';
          else if (q === '"' && e === 't') out += '\t';
          else if (q === '"' && e === '\\') out += '\\';
          else out += c + e;
          j++;
          continue;
        }
        if (c === q) {
          closed = true;
          break;
        }
        out += c;
      }
      if (!closed) {
        err(
          line,
          valueCol,
          `the ${q === '"' ? 'double' : 'single'}-quoted value of ${name} is not closed on this line`,
          `add the closing ${q}`,
        );
        return;
      }
      const after = rest.slice(j + 1).trim();
      if (after !== '' && !after.startsWith('#')) {
        err(line, valueCol + j + 1, `unexpected text after the quoted value of ${name}`, 'a comment after a value starts with #');
        return;
      }
      value = out;
      interpolated = q === '"';
    } else {
      const hash = rest.search(/\s#/);
      value = (hash >= 0 ? rest.slice(0, hash) : rest).trim();
    }
    if (interpolated) {
      const r = interpolate(value, lookup);
      for (const p of r.problems)
        diagnostics.push({
          file,
          line,
          column: valueCol + Math.max(0, rest.indexOf(p.expr)),
          message: p.message,
          ...(p.hint ? { hint: p.hint } : {}),
          severity: p.severity,
        });
      if (r.problems.some((p) => p.severity === 'error')) return;
      value = r.value;
    }
    vars.set(name, value);
  });
  return { vars, diagnostics };
}
