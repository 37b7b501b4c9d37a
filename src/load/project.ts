/**
 * Loading a project: discover its files, hand each to its dialect loader, then run the checks
 * that span VMs and files (duplicate names, depends_on targets and cycles, undeclared volumes),
 * apply defaults in one place and validate the canonical model. One invalid file means no
 * project at all: the caller gets diagnostics and `project: null`, and never acts on a VM.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import type { Project, SourceLocation, VmSpec } from '../../schemas/model.js';
import { validateVmSpec } from '../../schemas/validators.generated.js';
import { applyDefaults } from '../../schemas/defaults.js';
import { UsageError } from '../../schemas/errors.js';
import { errorAt as at, locateField, type DialectLoader, type DialectResult, type LoadedVm } from './common.js';
import { didYouMean, nameProblem } from '../../schemas/names.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { isHolosFile } from './holos-file.js';
import { MAX_FILE_BYTES, textLimits, tidy } from './limits.js';
import { crossChecks } from './cross-checks.js';
import { catalogEntry, catalogNames } from '../images/catalog.js';

/** Project file names looked for in the working directory, in this order. */
export const PROJECT_FILE_NAMES = ['tend.yaml', 'tend.yml', 'holos.yaml', 'holos.yml', 'VMFile.kdl', 'vms.yml', 'vms.yaml'] as const;

export interface LoadResult {
  project: Project | null;
  diagnostics: Diagnostic[];
  /** where each VM is declared */
  origins: Record<string, SourceLocation>;
  /** per VM: settings tend inferred rather than read (`plan` shows them), e.g. UEFI for devices */
  notes: Record<string, string[]>;
  /** the project's name as far as the files tell it (also when they have errors) */
  name: string;
  /** the project's directory (the first file's) */
  dir: string;
}

/** The project files in `dir` (PROJECT_FILE_NAMES that exist there), in that order. */
export function projectFilesIn(dir: string): string[] {
  return PROJECT_FILE_NAMES.map((n) => resolve(dir, n)).filter((p) => existsSync(p));
}

/**
 * The project files of the working directory or, as git and compose do, of the nearest folder
 * above it that has any (`tend ps` in `proj/src/lib` finds `proj/tend.yaml`).
 */
export function discoverProjectFiles(cwd: string): string[] {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const found = projectFilesIn(dir);
    if (found.length > 0) return found;
    if (dirname(dir) === dir) break;
  }
  throw new UsageError(
    `no project file in ${cwd} or any folder above it: create tend.yaml or VMFile.kdl (or holos.yaml, vms.yml; \`tend init\` writes one), or pass -f FILE or -p PROJECT`,
    'NoProjectFile',
  );
}

/**
 * Which loader reads a file, by its name. Each dialect's loader is imported only when a file of
 * it is loaded: kdljs builds its parser when imported (~40 ms), which YAML-only projects never
 * pay, and the two YAML libraries and the Dockerfile parser (~15 ms) are not loaded for a
 * VMFile.kdl.
 */
export async function dialectOf(file: string): Promise<{ name: 'kdl' | 'compose' | 'vms-yml'; load: DialectLoader }> {
  const base = basename(file).toLowerCase();
  if (base.endsWith('.kdl')) return { name: 'kdl', load: (await import('./kdl.js')).loadKdl };
  if (base === 'vms.yml' || base === 'vms.yaml') return { name: 'vms-yml', load: (await import('./vms-yml.js')).loadVmsYml };
  return { name: 'compose', load: (await import('./compose.js')).loadCompose };
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * `tend up --warm`: the project-wide default of `warm`, in place of the files' top-level
   * `warm`; a VM's own `warm` still wins
   */
  warm?: boolean;
}

export async function loadProject(files: string[], opts: LoadOptions = {}): Promise<LoadResult> {
  const cwd = opts.cwd ?? process.cwd();
  const diagnostics: Diagnostic[] = [];
  const loaded: LoadedVm[] = [];
  const volumes: Project['volumes'] = {};
  const volumeLocs: Record<string, SourceLocation> = {};
  const absFiles = files.map((f) => resolve(cwd, f));
  let projectName: string | undefined;

  const readable: { file: string; text: string }[] = [];
  for (const file of absFiles) {
    let text: string;
    try {
      // a FIFO or a device would block or never end: only regular files, and not huge ones
      const st = statSync(file);
      if (!st.isFile()) {
        diagnostics.push(at(file, 1, 1, 'this is not a regular file', 'name a project file (tend.yaml, VMFile.kdl, ...)'));
        continue;
      }
      if (st.size > MAX_FILE_BYTES) {
        diagnostics.push(at(file, 1, 1, `the file is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB, the most tend reads`));
        continue;
      }
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      diagnostics.push(at(file, 1, 1, code === 'ENOENT' ? 'the file does not exist' : `the file cannot be read (${code ?? String(err)})`));
      continue;
    }
    const limit = textLimits(file, text);
    if (limit) {
      diagnostics.push(limit);
      continue;
    }
    readable.push({ file, text });
  }

  // compose files (tend.yaml, holos.yaml and any other YAML but vms.yml) merge as compose's
  // `-f a -f b` do: the first of a flavour is the base, later ones of the same flavour override it
  const composeGroups = new Map<boolean, { file: string; text: string }[]>();
  const units: { file: string; text: string; group?: { file: string; text: string }[] }[] = [];
  for (const r of readable) {
    if ((await dialectOf(r.file)).name !== 'compose') {
      units.push(r);
      continue;
    }
    const holos = isHolosFile(r.file);
    const group = composeGroups.get(holos);
    if (group) group.push(r);
    else {
      const g = [r];
      composeGroups.set(holos, g);
      units.push({ ...r, group: g });
    }
  }

  for (const { file, text, group } of units) {
    const dialect = await dialectOf(file);
    let result: DialectResult;
    try {
      result = group ? (await import('./compose.js')).loadComposeFiles(group, opts.env) : dialect.load(file, text, opts.env);
    } catch (err) {
      // A loader must never throw on bad input; if one does, it is still the user's file we report on.
      diagnostics.push(at(file, 1, 1, `tend could not read this file: ${(err as Error).message}`));
      continue;
    }
    diagnostics.push(...result.diagnostics);
    projectName ??= result.name;
    projectWarm(result, opts.warm);
    loaded.push(...result.vms);
    for (const [name, vol] of Object.entries(result.volumes)) {
      if (volumes[name]) {
        const first = volumeLocs[name];
        diagnostics.push(
          at(
            result.volumeLocs[name]?.file ?? file,
            result.volumeLocs[name]?.line ?? 1,
            result.volumeLocs[name]?.column ?? 1,
            `volume "${name}" is declared twice (first at ${first.file}:${first.line}:${first.column})`,
          ),
        );
        continue;
      }
      volumes[name] = vol;
      volumeLocs[name] = result.volumeLocs[name] ?? { file, line: 1, column: 1 };
    }
  }

  const parsedOk = !diagnostics.some((d) => d.severity === 'error');
  if (parsedOk && loaded.length === 0 && absFiles.length > 0) {
    diagnostics.push(
      at(
        absFiles[0],
        1,
        1,
        'the project declares no VMs',
        'declare at least one: `vm "web" { ... }` in VMFile.kdl, or `services: { web: { image: debian:12 } }` in tend.yaml',
      ),
    );
  }

  diagnostics.push(...crossChecks(loaded, volumes));

  const specs: VmSpec[] = [];
  const origins: Record<string, SourceLocation> = {};
  const notes: Record<string, string[]> = {};
  for (const vm of loaded) {
    origins[vm.draft.name] = vm.loc;
    diagnostics.push(...imageCheck(vm), ...displayCheck(vm));
    const inferred = [...(vm.notes ?? []), ...inferSettings(vm)];
    if (inferred.length > 0) notes[vm.draft.name] = inferred;
    const spec = withContentDigests(applyDefaults(vm.draft));
    diagnostics.push(...schemaCheck(vm, spec));
    specs.push(spec);
  }

  const dir = absFiles.length > 0 ? dirname(absFiles[0]) : cwd;
  const name = projectName ?? projectNameFromDir(dir);
  if (diagnostics.some((d) => d.severity === 'error')) {
    return { project: null, diagnostics: sortDiagnostics(diagnostics), origins, notes, name, dir };
  }
  return {
    project: { name, dir, files: absFiles, vms: specs, volumes },
    diagnostics: sortDiagnostics(diagnostics),
    origins,
    notes,
    name,
    dir,
  };
}

/**
 * The project-wide `warm` (the command line's, else the file's top level) as the default of each
 * VM of the file that does not set its own: a VM's own `warm: false` keeps it cold.
 */
function projectWarm(result: DialectResult, flag: boolean | undefined): void {
  const dflt = flag !== undefined ? { value: flag, loc: undefined } : result.warm;
  if (!dflt) return;
  for (const vm of result.vms) {
    if (vm.draft.warm !== undefined) continue;
    vm.draft.warm = dflt.value;
    if (dflt.loc) vm.fieldLocs['/warm'] = dflt.loc;
  }
}

/**
 * Settings a VM gets without writing them, as the tool its file comes from gives them:
 * UEFI when PCI devices are passed through (holos: VFIO needs OVMF), UEFI for a catalog image
 * that only boots with it. Explicit firmware in the file wins; each inference is a plan note.
 */
function inferSettings(vm: LoadedVm): string[] {
  const d = vm.draft;
  const out: string[] = [];
  if (d.firmware !== undefined) return out;
  if ((d.devices ?? []).length > 0) {
    d.firmware = 'uefi';
    out.push('firmware uefi (inferred: PCI devices are passed through, as holos does)');
  } else if (d.image.kind === 'catalog' && catalogEntry(d.image.ref)?.firmware === 'uefi') {
    d.firmware = 'uefi';
    out.push(`firmware uefi (inferred: the ${catalogEntry(d.image.ref)?.name ?? d.image.ref} image boots only with UEFI)`);
  }
  return out;
}

/** A built-in image name must be one tend knows, so a typo fails `validate`, not `up`. */
function imageCheck(vm: LoadedVm): Diagnostic[] {
  const img = vm.draft.image;
  if (img.kind !== 'catalog' || catalogEntry(img.ref)) return [];
  const loc = locateField(vm, '/image');
  const names = catalogNames();
  const guess = didYouMean(img.ref.toLowerCase(), names);
  const family = img.ref.toLowerCase().split(':')[0];
  const sameFamily = names.filter((n) => n.split(':')[0] === family);
  return [
    at(
      loc.file,
      loc.line,
      loc.column,
      `"${img.ref}" is not a built-in image`,
      guess
        ? `did you mean ${guess}?`
        : `${sameFamily.length > 0 ? `built-in ${family} images: ${sameFamily.join(', ')}` : `built-in images: ${names.join(', ')}`}; ` +
            'for any other image write its URL (with a checksum) or the path of a local disk image',
    ),
  ];
}

/** VNC/SPICE show the video device: with `video none` there is nothing to show. */
function displayCheck(vm: LoadedVm): Diagnostic[] {
  const { video, graphics } = vm.draft;
  if (video !== 'none' || graphics === undefined || graphics === 'none') return [];
  const loc = locateField(vm, '/graphics');
  return [
    at(
      loc.file,
      loc.line,
      loc.column,
      `graphics ${graphics} shows the VM's screen, but video is none: there is no screen to show`,
      'remove video none (the default is the standard VGA), or remove graphics',
    ),
  ];
}

/**
 * Record what the files behind the spec's paths contain, so editing a raw user-data file or
 * replacing a local image (same path) shows up in the plan as a seed change or a recreate.
 */
function withContentDigests(spec: VmSpec): VmSpec {
  const out = { ...spec };
  try {
    if (spec.cloudInit?.userData)
      out.userDataDigest = `sha256:${createHash('sha256').update(readFileSync(spec.cloudInit.userData)).digest('hex')}`;
    if (spec.image.kind === 'path') {
      const st = statSync(spec.image.ref);
      out.imageDigest = `${st.size}:${Math.trunc(st.mtimeMs)}`;
    }
  } catch {
    // a missing file was already reported by the loader
  }
  return out;
}

/** A directory's base name made into a valid project name ("My Project" → "my-project"). */
export function projectNameFromDir(dir: string): string {
  const n = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return n && nameProblem(n) === null ? n : 'project';
}

/** The canonical model's own schema: catches whatever a loader let through, placed via fieldLocs. */
function schemaCheck(vm: LoadedVm, spec: VmSpec): Diagnostic[] {
  if (validateVmSpec(spec)) return [];
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const e of validateVmSpec.errors ?? []) {
    if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const loc = locateField(vm, e.instancePath);
    const message = `${fieldName(e.instancePath)} ${plainAjvMessage(e)}`;
    const key = `${loc.line}:${loc.column}:${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(at(loc.file, loc.line, loc.column, message));
  }
  return out;
}

function fieldName(pointer: string): string {
  return pointer ? pointer.slice(1).replace(/\//g, '.') : 'the VM';
}

function plainAjvMessage(e: ErrorObject): string {
  switch (e.keyword) {
    case 'minimum':
      return `must be at least ${String((e.params as { limit: number }).limit)}`;
    case 'maximum':
      return `must be at most ${String((e.params as { limit: number }).limit)}`;
    case 'pattern':
      return 'has an invalid form';
    case 'enum':
      return `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.filter((v) => v !== null).join(', ')}`;
    case 'type':
      return `must be ${String((e.params as { type: string }).type).replace(',', ' or ')}`;
    default:
      return e.message ?? 'is invalid';
  }
}

function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  // a value of megabytes quoted in a message would drown it: long words are cut
  return ds
    .map((d) => ({ ...d, message: tidy(d.message), ...(d.hint ? { hint: tidy(d.hint) } : {}) }))
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}
