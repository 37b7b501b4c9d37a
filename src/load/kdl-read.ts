/**
 * Checked access to KDL nodes for the VMFile.kdl loader: "exactly one string value", "a
 * positive whole number", "a block, not a value", ... Every failed check becomes a diagnostic
 * at the offending node or value; the accessors then return undefined and loading goes on, so a
 * file's errors are reported together.
 */
import type { SourceLocation } from '../../schemas/model.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { didYouMean } from '../../schemas/names.js';
import type { KNode, KValue } from './kdl-parse.js';

/** What each node looks like, for hints. */
export const EXAMPLES: Record<string, string> = {
  vm: 'vm "web" { image "debian:12" }',
  image: 'image "debian:12" (a catalog name) or image "images/disk.qcow2" (a file)',
  'image-url': 'image-url "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2"',
  'image-format': 'image-format "qcow2"',
  'image-os': 'image-os "debian"',
  checksum: 'checksum "sha256:<64 hex digits>"',
  vcpus: 'vcpus 2',
  memory: 'memory 2048',
  disk: 'disk 20',
  machine: 'machine "q35"',
  'cpu-model': 'cpu-model "host"',
  firmware: 'firmware "uefi"',
  accel: 'accel "tcg"',
  network: 'network "user"',
  bridge: 'bridge "br0"',
  'cloud-init': 'cloud-init { hostname "web" }',
  hostname: 'hostname "web"',
  'ssh-key': 'ssh-key "~/.ssh/id_ed25519.pub"',
  'user-data': 'user-data "cloud-config.yaml"',
  user: 'user "ubuntu"',
  package: 'package "nginx"',
  runcmd: 'runcmd "systemctl enable --now nginx"',
  bootcmd: 'bootcmd "echo booting"',
  'write-file': 'write-file "/etc/motd" { content "hello" }',
  content: 'content "hello"',
  permissions: 'permissions "0644"',
  owner: 'owner "root:root"',
  ssh: 'ssh { user "ubuntu" }',
  'private-key': 'private-key "~/.ssh/id_ed25519"',
  port: 'port "8080:80"',
  provision: 'provision "shell" { inline "echo hello" }',
  inline: 'inline "echo hello"',
  script: 'script "scripts/setup.sh"',
  source: 'source "config/app.conf"',
  destination: 'destination "/etc/app/app.conf"',
  volume: 'volume "data:/var/lib/data"',
  size: 'size 10',
  'depends-on': 'depends-on "db"',
  restart: 'restart "on-failure"',
  state: 'state "stopped"',
  disposable: 'disposable #true',
  'stop-grace-period': 'stop-grace-period "30s"',
  stop: 'stop "save"',
  'extra-args': 'extra-args "-device" "virtio-rng-pci"',
  video: 'video "virtio"',
  graphics: 'graphics "vnc"',
  device: 'device "0000:01:00.0"',
  'rom-file': 'rom-file "roms/gpu.rom"',
  healthcheck: 'healthcheck { test "curl -f http://localhost" }',
  test: 'test "curl -f http://localhost"',
  interval: 'interval "10s"',
  retries: 'retries 3',
  'start-period': 'start-period "5s"',
  timeout: 'timeout "2s"',
};

export function example(name: string): string | undefined {
  const e = EXAMPLES[name];
  return e ? `write ${e}` : undefined;
}

export function quote(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export class KdlReader {
  readonly diagnostics: Diagnostic[] = [];

  error(loc: SourceLocation, message: string, hint?: string): void {
    this.diagnostics.push({ file: loc.file, line: loc.line, column: loc.column, message, ...(hint ? { hint } : {}), severity: 'error' });
  }

  get count(): number {
    return this.diagnostics.length;
  }

  /** Reports properties (`key=value`), which no VMFile.kdl node uses. */
  noProps(node: KNode): void {
    for (const p of node.props) {
      this.error(
        p.keyLoc,
        `${node.name} does not take properties (${p.key}=...)`,
        `write ${p.key} as a node of its own inside a block, or ${example(node.name) ?? 'drop it'}`,
      );
    }
  }

  /** The node must not have a `{ }` block. */
  noBlock(node: KNode): boolean {
    if (node.children === null) return true;
    this.error(node.childrenLoc ?? node.loc, `${node.name} takes a value, not a block`, example(node.name));
    return false;
  }

  /** The node must have a `{ }` block; returns its children. */
  block(node: KNode): KNode[] | undefined {
    if (node.children !== null) return node.children;
    this.error(node.args[0]?.loc ?? node.loc, `${node.name} needs a block { ... }`, example(node.name));
    return undefined;
  }

  /** Exactly one value. */
  one(node: KNode): KValue | undefined {
    this.noProps(node);
    if (node.args.length === 0) {
      if (node.props.length === 0) this.error(node.loc, `${node.name} needs a value`, example(node.name));
      return undefined;
    }
    if (node.args.length > 1) {
      const next = node.args[1].value;
      const glued = typeof next === 'string' && EXAMPLES[next] !== undefined;
      this.error(
        node.args[1].loc,
        `${node.name} takes one value, not ${node.args.length}`,
        glued ? `is a line break missing before ${next}? Put each node on its own line, or separate them with ";"` : example(node.name),
      );
      return undefined;
    }
    return node.args[0];
  }

  /** Exactly one string value and no block. */
  string(node: KNode, allowBlock = false): { value: string; loc: SourceLocation } | undefined {
    if (!allowBlock && !this.noBlock(node)) return undefined;
    const v = this.one(node);
    if (!v) return undefined;
    if (typeof v.value !== 'string') {
      this.error(v.loc, `${node.name} must be a string, not ${quote(v.value)}`, `write ${node.name} "${String(v.value)}"`);
      return undefined;
    }
    if (v.value.trim() === '') {
      this.error(v.loc, `${node.name} is empty`, example(node.name));
      return undefined;
    }
    return { value: v.value, loc: v.loc };
  }

  /** One or more string values (`package "a" "b"`). */
  strings(node: KNode): { value: string; loc: SourceLocation }[] {
    if (!this.noBlock(node)) return [];
    this.noProps(node);
    if (node.args.length === 0) {
      if (node.props.length === 0) this.error(node.loc, `${node.name} needs a value`, example(node.name));
      return [];
    }
    const out: { value: string; loc: SourceLocation }[] = [];
    for (const a of node.args) {
      if (typeof a.value !== 'string')
        this.error(a.loc, `${node.name} values must be strings, not ${quote(a.value)}`, `write "${String(a.value)}"`);
      else out.push({ value: a.value, loc: a.loc });
    }
    return out;
  }

  /** One value from a fixed set of words. */
  choice<T extends string>(node: KNode, choices: readonly T[], allowBlock = false): { value: T; loc: SourceLocation } | undefined {
    const s = this.string(node, allowBlock);
    if (!s) return undefined;
    if ((choices as readonly string[]).includes(s.value)) return { value: s.value as T, loc: s.loc };
    const guess = didYouMean(s.value, choices);
    this.error(
      s.loc,
      `${node.name} must be one of ${choices.map((c) => `"${c}"`).join(', ')}, not "${s.value}"`,
      guess ? `did you mean ${node.name} "${guess}"?` : undefined,
    );
    return undefined;
  }

  /** A boolean: `#true`/`#false` (KDL 2) or `true`/`false` (KDL 1). No value means true. */
  bool(node: KNode): boolean | undefined {
    if (!this.noBlock(node)) return undefined;
    this.noProps(node);
    if (node.args.length === 0) return true;
    const v = this.one(node);
    if (!v) return undefined;
    if (typeof v.value === 'boolean') return v.value;
    if (v.value === 'true' || v.value === 'false' || v.value === 'yes' || v.value === 'no') {
      const b = v.value === 'true' || v.value === 'yes';
      this.error(v.loc, `${node.name} must be #true or #false, not the string "${v.value}"`, `write ${node.name} #${String(b)}`);
      return undefined;
    }
    this.error(v.loc, `${node.name} must be #true or #false, not ${quote(v.value)}`, `write ${node.name} #true`);
    return undefined;
  }

  /** A whole number >= min. `unit` is named in messages ("MiB"). */
  wholeNumber(
    node: KNode,
    opts: {
      min?: number;
      max?: number;
      /** false: only "a whole number" is checked here (a field table checks the canonical limits) */
      range?: boolean;
      unit?: string;
      fromString?: (s: string) => { message: string; hint: string } | undefined;
    } = {},
  ): { value: number; loc: SourceLocation } | undefined {
    if (!this.noBlock(node)) return undefined;
    const v = this.one(node);
    if (!v) return undefined;
    const unit = opts.unit ? ` (in ${opts.unit})` : '';
    if (typeof v.value === 'string') {
      const special = opts.fromString?.(v.value);
      if (special) this.error(v.loc, special.message, special.hint);
      else if (/^\s*-?\d+(\.\d+)?\s*$/.test(v.value))
        this.error(v.loc, `${node.name} must be a number, not the string "${v.value}"`, `write ${node.name} ${v.value.trim()}`);
      else this.error(v.loc, `${node.name} must be a whole number${unit}, not "${v.value}"`, example(node.name));
      return undefined;
    }
    if (typeof v.value !== 'number' || !Number.isFinite(v.value)) {
      this.error(v.loc, `${node.name} must be a whole number${unit}, not ${quote(v.value)}`, example(node.name));
      return undefined;
    }
    if (!Number.isInteger(v.value)) {
      this.error(
        v.loc,
        `${node.name} must be a whole number${unit}, not ${v.value}`,
        `write ${node.name} ${Math.max(opts.min ?? 1, Math.round(v.value))}`,
      );
      return undefined;
    }
    const min = opts.min ?? 1;
    if (opts.range === false) return { value: v.value, loc: v.loc };
    if (v.value < min) {
      this.error(
        v.loc,
        v.value <= 0 ? `${node.name} must be more than 0, not ${v.value}` : `${node.name} must be at least ${min}${unit}, not ${v.value}`,
        example(node.name),
      );
      return undefined;
    }
    if (opts.max !== undefined && v.value > opts.max) {
      this.error(v.loc, `${node.name} must be at most ${opts.max}${unit}, not ${v.value}`, example(node.name));
      return undefined;
    }
    return { value: v.value, loc: v.loc };
  }

  /** Children by name, reporting unknown names (with "did you mean") and repeats of single nodes. */
  children(parent: string, nodes: KNode[], known: readonly string[], repeatable: readonly string[] = []): KNode[] {
    const seen = new Map<string, KNode>();
    const out: KNode[] = [];
    for (const n of nodes) {
      if (!known.includes(n.name)) {
        const guess = didYouMean(n.name, known);
        this.error(
          n.loc,
          `unknown node "${n.name}" in ${parent}`,
          guess ? `did you mean "${guess}"?` : `${parent} takes ${known.join(', ')}`,
        );
        continue;
      }
      const first = seen.get(n.name);
      if (first && !repeatable.includes(n.name)) {
        this.error(n.loc, `${n.name} is given twice in ${parent} (first on line ${first.loc.line})`, 'keep one of them');
        continue;
      }
      seen.set(n.name, n);
      out.push(n);
    }
    return out;
  }
}
