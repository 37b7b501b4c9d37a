/**
 * Where a tend.yaml service's image comes from: its `image` (a catalog name, a URL or a local
 * file), or the FROM of holos' `dockerfile:`, whose instructions become the first provision steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ImageSource, SourceLocation, VmSpec } from '../../schemas/model.js';
import { parseDockerfile } from './dockerfile.js';
import { shellQuote } from '../ssh/shell-quote.js';
import { looksLikeCatalogName, normalizeChecksum, resolvePath, urlProblem } from './common.js';
import type { YamlPath } from './compose-yaml.js';
import { MAX_REFERENCED_BYTES } from './limits.js';
import { localPath, report, type ComposeContext, type Obj, type Svc } from './compose-ctx.js';

export function image(ctx: ComposeContext, base: YamlPath, svc: Obj): ImageSource | null {
  const ref = svc.image;
  if (typeof ref !== 'string' || ref === '') return null;
  const p = [...base, 'image'];
  let source: ImageSource;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    const problem = urlProblem(ref);
    if (problem) report(ctx, p, `image ${problem}`);
    source = { kind: 'url', ref };
  } else if (looksLikeCatalogName(ref)) {
    source = { kind: 'catalog', ref };
  } else {
    const abs = localPath(ctx, p, ref, 'the image file', 'file');
    source = { kind: 'path', ref: abs ?? resolvePath(ref, ctx.dir, ctx.env) };
    if (abs === null && !ref.includes('/') && /^[A-Za-z0-9:._-]+$/.test(ref)) {
      // Probably meant as a catalog name: say so in the hint too.
      ctx.diagnostics[ctx.diagnostics.length - 1] = {
        ...ctx.diagnostics[ctx.diagnostics.length - 1],
        hint: 'catalog names are lower-case, like debian:12, ubuntu:noble or alpine; a local image is a path like ./images/base.qcow2',
      };
    }
  }
  if (typeof svc.image_format === 'string') source.format = svc.image_format as ImageSource['format'];
  if (typeof svc.image_os === 'string') {
    if (/^[a-z0-9][a-z0-9._-]*$/.test(svc.image_os)) source.os = svc.image_os;
    else
      report(
        ctx,
        [...base, 'image_os'],
        `image_os "${svc.image_os}" is not an OS family name`,
        'write e.g. debian, ubuntu, alpine, fedora, systemd or openrc',
      );
  }
  if (typeof svc.checksum === 'string') {
    const c = normalizeChecksum(svc.checksum);
    if (c) source.checksum = c;
    else
      report(
        ctx,
        [...base, 'checksum'],
        `checksum "${svc.checksum}" is not a sha256 or sha512 checksum`,
        'write "sha256:<64 hex digits>" or "sha512:<128 hex digits>"',
      );
  }
  return source;
}

export /**
 * holos' `dockerfile:` (src/load/dockerfile.ts): its steps go first in the VM's provision list, its
 * FROM is the image when the service names none, and the service's cloud_init.runcmd runs after
 * the Dockerfile's steps (holos runs the Dockerfile first, then runcmd: its runcmd may need what
 * the Dockerfile installed). Returns FROM's image when `wantImage`.
 */
function dockerfile(s: Svc, ref: string, wantImage: boolean): ImageSource | null {
  const { base, ctx, draft } = s;
  const path = [...base, 'dockerfile'];
  const abs = localPath(ctx, path, ref, 'the Dockerfile', 'file', MAX_REFERENCED_BYTES);
  if (!abs) return null;
  const df = parseDockerfile(abs, readFileSync(abs, 'utf8'));
  ctx.diagnostics.push(...df.diagnostics);
  let img: ImageSource | null = null;
  if (wantImage) {
    if (!df.from)
      report(ctx, path, `the Dockerfile ${ref} has no FROM, and service ${String(base[1])} no image`, 'add `FROM debian:12` or `image:`');
    else img = fromImage(ctx, abs, df.from);
  }
  const existing = (draft.get('/provision') as VmSpec['provision'] | undefined) ?? [];
  const steps: VmSpec['provision'] = df.steps.map((x) => x.step);
  const locs: SourceLocation[] = df.steps.map((x) => ({ file: abs, line: x.line, column: 1 }));
  const runcmd = draft.get('/cloudInit/runcmd');
  if (Array.isArray(runcmd) && runcmd.length > 0) {
    steps.push({
      kind: 'shell',
      inline: [
        '# cloud_init.runcmd, after the Dockerfile (as holos runs it)',
        ...runcmd.map((c) => `sudo -n sh -c ${shellQuote(String(c))}`),
      ],
    });
    locs.push(draft.locs['/cloudInit/runcmd'] ?? ctx.loc.value([...base, 'cloud_init', 'runcmd']));
    draft.set('/cloudInit/runcmd', []);
  }
  // the service's own provision steps keep their locations, after the Dockerfile's
  const moved: Record<string, SourceLocation> = {};
  for (const [p, l] of Object.entries(draft.locs)) {
    const m = /^\/provision\/(\d+)(.*)$/.exec(p);
    if (!m) continue;
    moved[`/provision/${Number(m[1]) + steps.length}${m[2]}`] = l;
    delete draft.locs[p];
  }
  Object.assign(draft.locs, moved);
  locs.forEach((l, k) => draft.at(`/provision/${k}`, l));
  draft.set('/provision', [...steps, ...existing]);
  return img;
}

/** FROM's image: a catalog name, a URL, or a path relative to the Dockerfile's folder. */
function fromImage(ctx: ComposeContext, dockerfileAbs: string, from: { ref: string; line: number; column: number }): ImageSource | null {
  const at = (message: string, hint?: string): null => {
    ctx.diagnostics.push({
      file: dockerfileAbs,
      line: from.line,
      column: from.column,
      message,
      ...(hint ? { hint } : {}),
      severity: 'error',
    });
    return null;
  };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(from.ref)) {
    const problem = urlProblem(from.ref);
    return problem ? at(`FROM ${problem}`) : { kind: 'url', ref: from.ref };
  }
  if (looksLikeCatalogName(from.ref)) return { kind: 'catalog', ref: from.ref };
  const abs = resolvePath(from.ref, dirname(dockerfileAbs), ctx.env);
  if (!existsSync(abs)) {
    return at(
      `FROM "${from.ref}" is neither a built-in image nor an existing file (looked for ${abs})`,
      'write a catalog name (FROM debian:12, FROM ubuntu:noble) or the path of a local disk image',
    );
  }
  return { kind: 'path', ref: abs };
}
