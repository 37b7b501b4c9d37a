/** `tend image pull|list|inspect|verify|rm|build`: thin wrappers over the image store. */
import { basename } from 'node:path';
import { EXIT, UsageError, NotFoundError } from '../../../schemas/errors.js';
import type { CliCommand, CliIo, Invocation } from '../command.js';
import { resolveStateRoot, type GlobalOptions } from '../context.js';
import { table } from '../output.js';
import type { StoredImage } from '../../images/store.js';
import type { BootcSource } from '../../images/bootc.js';
import type { CaptureLeftover, TemplateInfo } from '../../qemu/templates.js';

export type ImageVerb = 'pull' | 'list' | 'inspect' | 'verify' | 'rm' | 'build' | 'templates' | 'prune';

export interface ImageCommandOptions extends GlobalOptions {
  verb: string;
  ref?: string;
  onProgress?: (message: string) => void;
  /** byte progress of a download (a progress bar on a TTY) */
  onDownload?: (p: { received: number; total: number | null }) => void;
  /** rm: delete even while VM disks use the image */
  force?: boolean;
}

export type ImageResult =
  | { verb: 'list'; images: StoredImageView[] }
  | { verb: 'pull' | 'inspect' | 'build'; image: StoredImageView }
  | { verb: 'verify'; ref: string; ok: boolean; expected: string; actual: string }
  | { verb: 'rm'; ref: string; removed: boolean }
  | { verb: 'templates'; templates: TemplateInfo[] }
  | { verb: 'prune'; removed: TemplateInfo[]; kept: TemplateInfo[]; unfinished: CaptureLeftover[] };

/** What the CLI shows of a stored image (src/images/store.ts). */
export type StoredImageView = Omit<StoredImage, 'verifiedAgainst'>;

function imageSourceOf(ref: string): { kind: 'path' | 'url' | 'catalog'; ref: string; format: null; checksum: null; os: null } {
  const kind = /^(https?|file|oci):\/\//.test(ref) ? 'url' : ref.startsWith('/') || ref.startsWith('.') ? 'path' : 'catalog';
  return { kind, ref, format: null, checksum: null, os: null };
}

/**
 * `tend image build NAME` where NAME is not a buildable catalog name but a VM of the project in the
 * working directory whose source is a bootc image: its source and disk size. Null otherwise (no
 * project here, no such VM: the catalog build reports the name).
 */
async function bootcVmOf(o: ImageCommandOptions, name: string): Promise<{ source: BootcSource; diskGiB: number | null } | null> {
  const { catalogEntry } = await import('../../images/catalog.js');
  if (catalogEntry(name)) return null;
  const { loadContext } = await import('../context.js');
  let vm;
  try {
    vm = (await loadContext(o)).project.vms.find((v) => v.name === name);
  } catch (err) {
    if (err instanceof UsageError && err.reason === 'NoProjectFile') return null;
    throw err;
  }
  if (!vm) return null;
  if (vm.image.kind !== 'bootc') {
    throw new UsageError(
      `${name} is a VM of this project, but its image is not a bootc image (${vm.image.kind} ${vm.image.ref}): \`tend up --name ${name}\` fetches it`,
      'NotBuildable',
    );
  }
  return { source: { ...vm.image, kind: 'bootc' }, diskGiB: vm.disk };
}

function notStored(ref: string): NotFoundError {
  return new NotFoundError('ImageNotFound', `no stored image "${ref}"`, {
    next: `\`tend image list\` shows the stored images; \`tend image pull ${ref}\` adds it`,
  });
}

export async function imageCommand(o: ImageCommandOptions): Promise<ImageResult> {
  const root = resolveStateRoot(o);
  const need = (): string => {
    if (!o.ref) throw new UsageError(`tend image ${o.verb} needs an image name`, 'NoImage');
    return o.ref;
  };
  const store = await import('../../images/store.js');
  switch (o.verb) {
    case 'list':
      return { verb: 'list', images: await store.listImages(root, o.onProgress ? { onCorrupt: o.onProgress } : {}) };
    case 'pull': {
      const image = await store.pullImage(root, imageSourceOf(need()), {
        ...(o.signal ? { signal: o.signal } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(o.onDownload ? { onDownload: o.onDownload } : {}),
      });
      return { verb: 'pull', image };
    }
    case 'inspect': {
      const image = await store.inspectImage(root, need(), o.onProgress ? { onCorrupt: o.onProgress } : {});
      if (!image) throw notStored(need());
      return { verb: 'inspect', image };
    }
    case 'verify': {
      const v = await store.verifyImage(root, need());
      return { verb: 'verify', ref: need(), ...v };
    }
    case 'rm': {
      // an image that is not stored is "not found" (exit 5), as for `inspect`, not a silent success
      if (!(await store.removeImage(root, need(), { force: o.force ?? false }))) throw notStored(need());
      return { verb: 'rm', ref: need(), removed: true };
    }
    case 'build': {
      // a VM of the project in the working directory built from a bootc image (ov's `ov vm build NAME`)
      const bootc = await bootcVmOf(o, need());
      if (bootc) {
        const { bootcDisk } = await import('../../images/bootc.js');
        const image = await bootcDisk(root, bootc.source, {
          diskGiB: bootc.diskGiB,
          env: o.env ?? process.env,
          ...(o.onProgress ? { onProgress: o.onProgress } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
        return { verb: 'build', image };
      }
      const { buildImage } = await import('../../images/build.js');
      const image = await buildImage(root, need(), {
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      return { verb: 'build', image };
    }
    case 'templates': {
      const { listTemplates } = await import('../../qemu/templates.js');
      return { verb: 'templates', templates: await listTemplates(root) };
    }
    case 'prune': {
      const { listTemplates, pruneCaptureLeftovers, pruneTemplates } = await import('../../qemu/templates.js');
      const unfinished = await pruneCaptureLeftovers(root);
      const removed = await pruneTemplates(root);
      return { verb: 'prune', removed, kept: await listTemplates(root), unfinished };
    }
    default:
      throw new UsageError(`unknown image command "${o.verb}": use pull, list, inspect, verify, rm, build, templates or prune`);
  }
}

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
}

export function renderImage(r: ImageResult): string {
  switch (r.verb) {
    case 'list':
      return r.images.length === 0
        ? 'no images stored (tend image pull debian:12)'
        : table(
            ['NAME', 'FORMAT', 'SIZE', 'CHECKSUM', 'ADDED'],
            r.images.map((i) => [i.name, i.format, human(i.size), i.checksum.slice(0, 19), i.addedAt]),
          );
    case 'verify':
      return r.ok ? `${r.ref}: ok (${r.actual})` : `${r.ref}: MISMATCH\n  expected ${r.expected}\n  actual   ${r.actual}`;
    case 'rm':
      return r.removed ? `${r.ref}: removed` : `${r.ref}: not stored`;
    case 'templates':
      return r.templates.length === 0
        ? 'no warm templates (a VM with `warm: true`, or `tend run --warm`, keeps one once Ready)'
        : table(
            ['TEMPLATE', 'SIZE', 'FROM', 'USED BY', 'CREATED', 'IMAGE'],
            r.templates.map((t) => [
              t.key,
              human(t.bytes),
              `${t.from.project}/${t.from.vm}`,
              String(t.usedBy.length),
              new Date(t.createdAt).toISOString().replace(/\.\d+Z$/, 'Z'),
              t.image,
            ]),
          );
    case 'prune':
      return [
        ...r.unfinished.map((u) => `removed ${basename(u.path)}, left by a template capture that did not finish (${human(u.bytes)})`),
        ...r.removed.map((t) => `removed template ${t.key} (${human(t.bytes)})`),
        ...r.kept.map((t) => `kept template ${t.key}: ${t.usedBy.length} VM disk(s) are backed by it`),
        ...(r.removed.length + r.kept.length + r.unfinished.length === 0 ? ['no warm templates'] : []),
      ].join('\n');
    default:
      return Object.entries(r.image)
        .map(([k, v]) => `${k}: ${k === 'size' ? human(Number(v)) : String(v)}`)
        .join('\n');
  }
}

/**
 * How a pull shows its progress: on a terminal one bar redrawn in place (src/cli/live.ts) with
 * the other messages above it; otherwise (piped, --json) a line per message and per 10 %.
 */
export async function pullProgress(
  io: CliIo,
  g: GlobalOptions,
): Promise<{ onProgress: (m: string) => void; onDownload?: (p: { received: number; total: number | null }) => void; close(): void }> {
  const { liveTerminal } = await import('../terminal.js');
  if (g.json || !liveTerminal(process.stderr, process.env)) return { onProgress: (m) => io.err(m), close: () => undefined };
  const { createPullBar } = await import('../live.js');
  const b = createPullBar(process.stderr);
  return { onProgress: (m) => b.onProgress(m), onDownload: (p) => b.onDownload(p), close: () => b.close() };
}

function imageVerb(verb: ImageVerb, description: string, example: string, configure?: CliCommand['configure']): CliCommand {
  return {
    name: verb,
    ...(verb === 'list' ? { aliases: ['ls'] } : {}),
    description,
    examples: [example],
    ...(configure ? { configure } : {}),
    async run({ g, args, opts, io }: Invocation) {
      const ref = typeof args[0] === 'string' ? args[0] : undefined;
      const progress = verb === 'pull' ? await pullProgress(io, g) : { onProgress: (m: string) => io.err(m), close: () => undefined };
      let r: ImageResult;
      try {
        r = await imageCommand({
          ...g,
          verb,
          ...(ref ? { ref } : {}),
          force: (opts as { force?: boolean }).force ?? false,
          ...progress,
        });
      } finally {
        progress.close();
      }
      if (g.json) io.json(r);
      else io.out(renderImage(r));
      return r.verb === 'verify' && !r.ok ? EXIT.failure : EXIT.ok;
    },
  };
}

export const command: CliCommand = {
  name: 'image',
  description: 'manage base images (pull, list, inspect, verify, rm, build) and warm templates (templates, prune)',
  examples: ['tend image pull debian:12', 'tend image list', 'tend image rm debian:12'],
  subcommands: [
    imageVerb('pull', 'download and verify an image', 'tend image pull debian:12', (c) =>
      c.argument('<ref>', 'catalog name (debian:12), URL or path'),
    ),
    imageVerb('list', 'list stored images', 'tend image list'),
    imageVerb('inspect', 'show an image: path, format, size, checksum', 'tend image inspect debian:12', (c) =>
      c.argument('<ref>', 'image'),
    ),
    imageVerb('verify', 're-hash a stored image against its checksum', 'tend image verify debian:12', (c) => c.argument('<ref>', 'image')),
    imageVerb('rm', 'delete a stored image (refused while a VM disk uses it)', 'tend image rm debian:12', (c) =>
      c.argument('<ref>', 'image').option('--force', 'delete even while VM disks use it (they break)'),
    ),
    imageVerb('templates', 'list warm templates (frozen disk + memory of a ready VM) with their size', 'tend image templates'),
    imageVerb('prune', 'remove the warm templates no VM disk is backed by', 'tend image prune'),
    imageVerb(
      'build',
      "build a catalog image locally (no network), or a bootc VM's disk (bootc install to-disk in podman, as `ov vm build`)",
      'tend image build desktop',
      (c) => c.argument('<name>', "buildable catalog name, or the name of a VM of this project's files whose source is a bootc image"),
    ),
  ],
};
