/**
 * The desired state `tend watch` works from: the last valid project. A save is read again (or,
 * when only content a VM references changed, not read at all) and turned into the VMs it affects
 * (affected.ts). An invalid or missing file is reported with its positions and changes nothing:
 * the last valid project stays in force, no VM is touched.
 */
import type { Project } from '../schemas/model.js';
import type { Diagnostic } from '../schemas/diagnostic.js';
import { formatDiagnostic } from '../schemas/diagnostic.js';
import type { TendEvent } from '../schemas/ports.js';
import { affectedVms, watchedPaths } from './affected.js';

export interface WatchLoad {
  project: Project | null;
  diagnostics: Diagnostic[];
}

export interface Reloaded {
  /** declared VMs whose desired state changed (or whose referenced files did) */
  vms: string[];
  /** VMs no longer declared */
  removed: string[];
}

type Emit = (type: TendEvent['type'], reason: TendEvent['reason'], vm: string | undefined, message: string) => void;

export class DesiredState {
  private invalid = false;

  constructor(
    public project: Project,
    private readonly load: () => WatchLoad | Promise<WatchLoad>,
    private readonly emit: Emit,
    private readonly prune: boolean,
    private readonly watchFiles?: (paths: string[]) => void,
  ) {}

  /** Point the file watcher at the project's files and every file it references. */
  watch(): void {
    this.watchFiles?.(watchedPaths(this.project));
  }

  /** `files` changed (absolute paths), or `why` is a reload (SIGHUP): what must be reconciled? */
  async reload(files: readonly string[], why: 'files' | 'reload'): Promise<Reloaded> {
    const projectFiles = new Set(this.project.files);
    if (why === 'files' && !files.some((f) => projectFiles.has(f))) {
      // only content a VM references changed (a script, user-data, an upload, an image)
      const a = affectedVms(this.project, this.project, files);
      if (a.vms.length > 0) this.emit('Normal', 'FilesChanged', undefined, `${files.join(', ')} changed: reconciling ${a.vms.join(', ')}`);
      return { vms: a.vms, removed: [] };
    }
    const r = await this.load();
    if (!r.project) {
      this.invalid = true;
      this.reportInvalid(r.diagnostics);
      return { vms: [], removed: [] };
    }
    if (this.invalid) this.emit('Normal', 'ProjectValid', undefined, 'the project files are valid again');
    this.invalid = false;
    const a = affectedVms(this.project, r.project, files);
    this.project = r.project;
    this.watch();
    for (const vm of a.removed) {
      const what = this.prune ? 'it is pruned (--prune)' : 'left as it is (pass --prune to delete it)';
      this.emit('Warning', 'Orphaned', vm, `no longer declared: ${what}`);
    }
    if (a.vms.length > 0 || a.removed.length > 0) {
      const what = why === 'reload' ? 'reloaded' : `${files.join(', ')} changed`;
      this.emit('Normal', 'FilesChanged', undefined, `${what}: reconciling ${a.vms.join(', ') || 'nothing'}`);
    }
    return { vms: a.vms, removed: a.removed };
  }

  private reportInvalid(diagnostics: Diagnostic[]): void {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    const missing = errors.filter((d) => d.message === 'the file does not exist');
    if (missing.length > 0 && missing.length === errors.length) {
      const s = missing.length === 1 ? 's' : '';
      this.emit(
        'Warning',
        'ProjectFileMissing',
        undefined,
        `${missing.map((d) => d.file).join(', ')} no longer exist${s}: the last valid desired state stays in force (no VM is deleted)`,
      );
      return;
    }
    this.emit(
      'Warning',
      'ProjectInvalid',
      undefined,
      `the project files are invalid; the last valid desired state stays in force until they are fixed:\n${errors.map(formatDiagnostic).join('\n')}`,
    );
  }
}
