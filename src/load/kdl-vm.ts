/**
 * One `vm "name" { ... }` node of a VMFile.kdl → a VM draft with field locations. Accepts every
 * node of vmctl's VMFile reference plus tend's additions (docs/kdl.md). Problems are reported
 * through the reader; the caller drops all VMs of a file that has any.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { SourceLocation, VmSpec } from '../../schemas/model.js';
import { DEFAULTS, type VmDraft } from '../../schemas/defaults.js';
import { IMAGE_FORMATS, looksLikeCatalogName, normalizeChecksum, resolvePath, urlProblem, type LoadedVm } from './common.js';
import { nameProblem } from '../../schemas/names.js';
import { diskSizeToGiB, memoryWithUnitToMiB, parseDuration } from '../../schemas/units.js';
import { parsePortSpec } from './ports.js';
import { parseVolumeSpec } from './volumes.js';
import { didYouMean } from '../../schemas/names.js';
import type { KNode } from './kdl-parse.js';
import { KdlReader, quote } from './kdl-read.js';

export interface KdlContext {
  file: string;
  dir: string;
  env: NodeJS.ProcessEnv;
}

export const VM_NODES = [
  'image',
  'image-url',
  'image-format',
  'image-os',
  'checksum',
  'vcpus',
  'memory',
  'disk',
  'machine',
  'cpu-model',
  'firmware',
  'accel',
  'network',
  'cloud-init',
  'ssh',
  'provision',
  'port',
  'volume',
  'depends-on',
  'restart',
  'state',
  'disposable',
  'stop-grace-period',
  'extra-args',
  'device',
  'healthcheck',
  'timeouts',
] as const;
const VM_REPEATABLE = ['provision', 'port', 'volume', 'depends-on', 'extra-args', 'device'];
const CLOUD_INIT_NODES = ['hostname', 'ssh-key', 'user-data', 'user', 'package', 'runcmd', 'bootcmd', 'write-file'];
const CLOUD_INIT_REPEATABLE = ['ssh-key', 'package', 'runcmd', 'bootcmd', 'write-file'];
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/;
const PCI_RE = /^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;

type Located<T> = { value: T; loc: SourceLocation };

/** A VM name made valid, for the hint. */
function suggestName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return s || 'web';
}

class VmReader {
  readonly draft: Partial<VmDraft> = {};
  readonly fieldLocs: Record<string, SourceLocation> = {};

  constructor(
    private readonly r: KdlReader,
    private readonly ctx: KdlContext,
  ) {}

  private at(pointer: string, loc: SourceLocation): void {
    this.fieldLocs[pointer] = loc;
  }

  /** A path that must exist; returns its absolute form. */
  private existingPath(v: Located<string>, what: string, kind: 'file' | 'folder' | 'any' = 'file'): string | undefined {
    const abs = resolvePath(v.value, this.ctx.dir, this.ctx.env);
    let st;
    try {
      st = statSync(abs);
    } catch {
      this.r.error(
        v.loc,
        `${what} "${v.value}" does not exist (looked for ${abs})`,
        'relative paths are resolved against the folder of VMFile.kdl; "~" is your home folder',
      );
      return undefined;
    }
    if (kind === 'file' && st.isDirectory()) {
      this.r.error(v.loc, `${what} "${v.value}" is a folder, not a file`);
      return undefined;
    }
    if (kind === 'folder' && !st.isDirectory()) {
      this.r.error(v.loc, `${what} "${v.value}" is a file, not a folder`);
      return undefined;
    }
    return abs;
  }

  image(nodes: KNode[], nameLoc: SourceLocation, vmName: string): void {
    const img = nodes.find((n) => n.name === 'image');
    const url = nodes.find((n) => n.name === 'image-url');
    if (img && url) {
      const second = img.loc.line > url.loc.line || (img.loc.line === url.loc.line && img.loc.column > url.loc.column) ? img : url;
      this.r.error(second.loc, 'image and image-url are both given: a VM has exactly one image source', 'keep one of them');
      return;
    }
    if (!img && !url) {
      this.r.error(
        nameLoc,
        `vm "${vmName}" has no image`,
        'add image "debian:12" (a catalog name), image "path/to/disk.qcow2" or image-url "https://..."',
      );
      return;
    }
    if (url) {
      const s = this.r.string(url);
      if (!s) return;
      const problem = urlProblem(s.value);
      if (problem) {
        this.r.error(
          s.loc,
          problem,
          looksLikeCatalogName(s.value) ? `for a catalog name write image "${s.value}"` : 'write image-url "https://host/path/image.qcow2"',
        );
        return;
      }
      this.draft.image = { kind: 'url', ref: s.value };
      this.at('/image', s.loc);
      return;
    }
    if (!img) return;
    const s = this.r.string(img);
    if (!s) return;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s.value)) {
      this.r.error(s.loc, `image takes a file path or a catalog name, and "${s.value}" is a URL`, `write image-url "${s.value}"`);
      return;
    }
    if (looksLikeCatalogName(s.value)) {
      this.draft.image = { kind: 'catalog', ref: s.value };
    } else {
      const abs = this.existingPath(s, 'the image file');
      if (!abs) return;
      this.draft.image = { kind: 'path', ref: abs };
    }
    this.at('/image', s.loc);
  }

  imageExtras(n: KNode): void {
    if (!this.draft.image) return;
    if (n.name === 'checksum') {
      const s = this.r.string(n);
      if (!s) return;
      const c = normalizeChecksum(s.value);
      if (!c)
        this.r.error(
          s.loc,
          `checksum "${s.value}" is not a sha256 or sha512 checksum`,
          'write checksum "sha256:<64 hex digits>" or "sha512:<128 hex digits>"',
        );
      else {
        this.draft.image.checksum = c;
        this.at('/image/checksum', s.loc);
      }
    } else if (n.name === 'image-format') {
      const s = this.r.string(n);
      if (!s) return;
      const f = s.value.toLowerCase();
      if (!(IMAGE_FORMATS as readonly string[]).includes(f)) {
        const guess = didYouMean(f, IMAGE_FORMATS);
        this.r.error(
          s.loc,
          `unsupported image format "${s.value}": tend reads ${IMAGE_FORMATS.join(', ')}`,
          guess ? `did you mean image-format "${guess}"?` : undefined,
        );
      } else {
        this.draft.image.format = f as (typeof IMAGE_FORMATS)[number];
        this.at('/image/format', s.loc);
      }
    } else if (n.name === 'image-os') {
      const s = this.r.string(n);
      if (s) {
        this.draft.image.os = s.value;
        this.at('/image/os', s.loc);
      }
    }
  }

  scalar(n: KNode): void {
    const r = this.r;
    switch (n.name) {
      case 'vcpus': {
        const v = r.wholeNumber(n, { min: 1, max: 512 });
        if (v) {
          this.draft.cpus = v.value;
          this.at('/cpus', v.loc);
        }
        return;
      }
      case 'memory': {
        const v = r.wholeNumber(n, {
          min: 1,
          unit: 'MiB',
          fromString: (s) => {
            const mib = memoryWithUnitToMiB(s);
            return mib !== null ? { message: `memory is in MiB: "${s}" is not a number of MiB`, hint: `write memory ${mib}` } : undefined;
          },
        });
        if (!v) return;
        if (v.value < 64) {
          r.error(
            v.loc,
            `memory is in MiB: ${v.value} MiB is too little to boot (at least 64)`,
            `write memory ${v.value * 1024} for ${v.value} GiB`,
          );
          return;
        }
        this.draft.memory = v.value;
        this.at('/memory', v.loc);
        return;
      }
      case 'disk': {
        const v = r.wholeNumber(n, {
          min: 1,
          unit: 'GiB',
          fromString: (s) => {
            const gib = diskSizeToGiB(s);
            if (gib === null) return undefined;
            return { message: `disk is in GiB: "${s}" is not a number of GiB`, hint: `write disk ${Math.max(1, Math.ceil(gib))}` };
          },
        });
        if (v) {
          this.draft.disk = v.value;
          this.at('/disk', v.loc);
        }
        return;
      }
      case 'machine':
      case 'cpu-model': {
        const v = r.string(n);
        if (!v) return;
        if (n.name === 'machine') this.draft.machine = v.value;
        else this.draft.cpuModel = v.value;
        this.at(n.name === 'machine' ? '/machine' : '/cpuModel', v.loc);
        return;
      }
      case 'firmware': {
        const v = r.choice(n, ['bios', 'uefi', 'uefi-secure'] as const);
        if (v) {
          this.draft.firmware = v.value;
          this.at('/firmware', v.loc);
        }
        return;
      }
      case 'accel': {
        const v = r.choice(n, ['auto', 'kvm', 'tcg'] as const);
        if (v) {
          this.draft.accel = v.value;
          this.at('/accel', v.loc);
        }
        return;
      }
      case 'restart': {
        const v = r.choice(n, ['always', 'on-failure', 'no'] as const);
        if (v) {
          this.draft.restart = v.value;
          this.at('/restart', v.loc);
        }
        return;
      }
      case 'state': {
        const v = r.choice(n, ['running', 'stopped'] as const);
        if (v) {
          this.draft.runState = v.value;
          this.at('/runState', v.loc);
        }
        return;
      }
      case 'disposable': {
        const v = r.bool(n);
        if (v !== undefined) {
          this.draft.disposable = v;
          this.at('/disposable', n.args[0]?.loc ?? n.loc);
        }
        return;
      }
      case 'stop-grace-period': {
        const v = this.duration(n, 0);
        if (v) {
          this.draft.stopGracePeriod = v.value;
          this.at('/stopGracePeriod', v.loc);
        }
        return;
      }
    }
  }

  /** A duration: "30s", "1m30s", or a number of seconds. */
  private duration(n: KNode, min: number): Located<number> | undefined {
    if (!this.r.noBlock(n)) return undefined;
    const v = this.r.one(n);
    if (!v) return undefined;
    const secs = typeof v.value === 'string' || typeof v.value === 'number' ? parseDuration(v.value) : null;
    if (secs === null) {
      this.r.error(v.loc, `${n.name} must be a duration such as "30s", "1m30s" or "500ms", not ${quote(v.value)}`, `write ${n.name} "30s"`);
      return undefined;
    }
    if (secs < min || (min > 0 && secs === 0)) {
      this.r.error(v.loc, `${n.name} must be more than 0s`, `write ${n.name} "10s"`);
      return undefined;
    }
    return { value: secs, loc: v.loc };
  }

  network(n: KNode): void {
    const first = n.args[0];
    if (n.args.length === 1 && (first.value === 'bridge' || first.value === 'bridged')) {
      this.r.error(
        first.loc,
        `network must be one of "user", "tap", "none", not "${first.value}"`,
        'to join a bridge write network "tap" { bridge "br0" }',
      );
      return;
    }
    const mode = this.r.choice(n, ['user', 'tap', 'none'] as const, true);
    if (!mode) return;
    this.at('/network', mode.loc);
    let bridge: string | null = null;
    if (n.children !== null) {
      if (mode.value !== 'tap') {
        this.r.error(
          n.childrenLoc ?? n.loc,
          `network "${mode.value}" takes no block (only "tap" has a bridge)`,
          `write network "${mode.value}"`,
        );
        return;
      }
      for (const c of this.r.children('network', n.children, ['bridge'])) {
        const b = this.r.string(c);
        if (b) {
          bridge = b.value;
          this.at('/network/bridge', b.loc);
        }
      }
    }
    // vmctl: a tap network without a bridge uses "br0".
    if (mode.value === 'tap' && bridge === null) bridge = 'br0';
    this.draft.network = { mode: mode.value, bridge };
  }

  cloudInit(n: KNode): void {
    if (n.children === null && n.args.length === 1 && typeof n.args[0].value === 'boolean') {
      if (!n.args[0].value) this.draft.cloudInit = null;
      this.at('/cloudInit', n.args[0].loc);
      return;
    }
    if (n.args.length > 0) {
      this.r.error(
        n.args[0].loc,
        'cloud-init takes a block { ... } (or #false to turn it off), not a value',
        'write cloud-init { hostname "web" }',
      );
      return;
    }
    const kids = this.r.block(n);
    if (!kids) return;
    this.r.noProps(n);
    this.at('/cloudInit', n.loc);
    const ci: NonNullable<VmDraft['cloudInit']> = {};
    for (const c of this.r.children('cloud-init', kids, CLOUD_INIT_NODES, CLOUD_INIT_REPEATABLE)) {
      switch (c.name) {
        case 'hostname': {
          const v = this.r.string(c);
          if (!v) break;
          if (!HOSTNAME_RE.test(v.value))
            this.r.error(
              v.loc,
              `hostname "${v.value}" is not a valid host name`,
              `use letters, digits, "-" and ".", e.g. hostname "${suggestName(v.value)}"`,
            );
          else {
            ci.hostname = v.value;
            this.at('/cloudInit/hostname', v.loc);
          }
          break;
        }
        case 'user': {
          const v = this.r.string(c);
          if (v) {
            ci.user = v.value;
            this.at('/cloudInit/user', v.loc);
          }
          break;
        }
        case 'ssh-key': {
          for (const v of this.r.strings(c)) {
            const key = this.publicKey(v);
            if (key === undefined) continue;
            ci.sshAuthorizedKeys ??= [];
            this.at(`/cloudInit/sshAuthorizedKeys/${ci.sshAuthorizedKeys.length}`, v.loc);
            ci.sshAuthorizedKeys.push(key);
          }
          break;
        }
        case 'user-data': {
          const v = this.r.string(c);
          const abs = v && this.existingPath(v, 'the user-data file');
          if (v && abs) {
            ci.userData = abs;
            this.at('/cloudInit/userData', v.loc);
          }
          break;
        }
        case 'write-file': {
          const wf = this.writeFile(c);
          if (!wf) break;
          ci.writeFiles ??= [];
          this.at(`/cloudInit/writeFiles/${ci.writeFiles.length}`, c.args[0]?.loc ?? c.loc);
          ci.writeFiles.push(wf);
          break;
        }
        case 'package':
        case 'runcmd':
        case 'bootcmd': {
          const key = c.name === 'package' ? 'packages' : c.name;
          const list = (ci[key] ??= []);
          for (const v of this.r.strings(c)) {
            this.at(`/cloudInit/${key}/${list.length}`, v.loc);
            list.push(v.value);
          }
          break;
        }
      }
    }
    this.draft.cloudInit = ci;
  }

  /** write-file "/guest/path" { content "..."; permissions "0644"; owner "root:root" } */
  private writeFile(n: KNode): NonNullable<NonNullable<VmDraft['cloudInit']>['writeFiles']>[number] | undefined {
    const path = this.r.string(n, true);
    if (!path) return undefined;
    if (!path.value.startsWith('/')) {
      this.r.error(
        path.loc,
        `write-file "${path.value}" is not an absolute path in the guest`,
        `write write-file "/${path.value.replace(/^\.?\/*/, '')}" { content "..." }`,
      );
      return undefined;
    }
    const kids = this.r.block(n);
    if (!kids) return undefined;
    let content: string | undefined;
    let permissions: string | null = null;
    let owner: string | null = null;
    for (const c of this.r.children('write-file', kids, ['content', 'permissions', 'owner'])) {
      if (c.name === 'content') {
        if (!this.r.noBlock(c)) continue;
        const v = this.r.one(c);
        if (v && typeof v.value === 'string') content = v.value;
        else if (v) this.r.error(v.loc, `content must be a string, not ${quote(v.value)}`, 'write content "..."');
        continue;
      }
      const v = this.r.string(c);
      if (!v) continue;
      if (c.name === 'permissions') {
        if (!/^0?[0-7]{3,4}$/.test(v.value))
          this.r.error(v.loc, `permissions "${v.value}" is not an octal mode`, 'write permissions "0644"');
        else permissions = v.value;
      } else owner = v.value;
    }
    if (content === undefined) {
      if (!kids.some((k) => k.name === 'content'))
        this.r.error(n.loc, `write-file "${path.value}" has no content`, 'add content "..." inside its block');
      return undefined;
    }
    return { path: path.value, content, permissions, owner };
  }

  /** ssh-key: a path to a public key file (its content is used), or the key itself. */
  private publicKey(v: Located<string>): string | undefined {
    if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-|sk-)\S* \S+/.test(v.value)) return v.value.trim();
    const abs = this.existingPath(v, 'the ssh-key file');
    if (!abs) return undefined;
    let text: string;
    try {
      text = readFileSync(abs, 'utf8').trim();
    } catch (err) {
      this.r.error(v.loc, `the ssh-key file "${v.value}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
    if (text.includes('PRIVATE KEY')) {
      this.r.error(
        v.loc,
        `ssh-key "${v.value}" is a private key: cloud-init needs the public key`,
        existsSync(`${abs}.pub`) ? `write ssh-key "${v.value}.pub"` : 'give the .pub file',
      );
      return undefined;
    }
    if (text === '') {
      this.r.error(v.loc, `the ssh-key file "${v.value}" is empty`);
      return undefined;
    }
    return text;
  }

  ssh(n: KNode): void {
    const kids = this.r.block(n);
    if (!kids) return;
    this.r.noProps(n);
    const ssh: NonNullable<VmDraft['ssh']> = {};
    this.at('/ssh', n.loc);
    for (const c of this.r.children('ssh', kids, ['user', 'private-key', 'port'])) {
      if (c.name === 'user') {
        const v = this.r.string(c);
        if (v) {
          ssh.user = v.value;
          this.at('/ssh/user', v.loc);
        }
      } else if (c.name === 'private-key') {
        const v = this.r.string(c);
        const abs = v && this.existingPath(v, 'the private-key file');
        if (v && abs) {
          ssh.privateKey = abs;
          this.at('/ssh/privateKey', v.loc);
        }
      } else {
        const v = this.r.wholeNumber(c, { min: 1, max: 65535 });
        if (v) {
          ssh.port = v.value;
          this.at('/ssh/port', v.loc);
        }
      }
    }
    this.draft.ssh = ssh;
  }

  provision(n: KNode): void {
    const steps = (this.draft.provision ??= []);
    const k = steps.length;
    this.r.noProps(n);
    const kindV = n.args[0];
    if (!kindV) {
      this.r.error(n.loc, 'provision needs a kind: "shell" or "file"', 'write provision "shell" { inline "echo hello" }');
      return;
    }
    if (n.args.length > 1)
      this.r.error(n.args[1].loc, `provision takes one kind, not ${n.args.length} values`, 'write provision "shell" { ... }');
    if (kindV.value !== 'shell' && kindV.value !== 'file') {
      const guess = typeof kindV.value === 'string' ? didYouMean(kindV.value, ['shell', 'file']) : undefined;
      this.r.error(
        kindV.loc,
        `unknown provisioner kind ${quote(kindV.value)}: tend has "shell" and "file"`,
        guess ? `did you mean provision "${guess}"?` : undefined,
      );
      return;
    }
    const kids = this.r.block(n);
    if (!kids) return;
    const pointer = `/provision/${k}`;
    if (kindV.value === 'shell') {
      const cs = this.r.children('provision "shell"', kids, ['inline', 'script'], ['inline']);
      const inlineNodes = cs.filter((c) => c.name === 'inline');
      const script = cs.find((c) => c.name === 'script');
      if (inlineNodes.length > 0 && script) {
        this.r.error(script.loc, 'a shell provisioner has inline or script, not both', 'split it into two provision "shell" blocks');
        return;
      }
      if (inlineNodes.length === 0 && !script) {
        if (cs.length === kids.length)
          this.r.error(
            kindV.loc,
            'this shell provisioner has neither inline nor script',
            'add inline "echo hello" or script "scripts/setup.sh"',
          );
        return;
      }
      if (script) {
        const v = this.r.string(script);
        const abs = v && this.existingPath(v, 'the script');
        if (!v || !abs) return;
        this.at(pointer, kindV.loc);
        this.at(`${pointer}/script`, v.loc);
        steps.push({ kind: 'shell', script: abs });
        return;
      }
      const inline: string[] = [];
      for (const c of inlineNodes) {
        for (const v of this.r.strings(c)) {
          this.at(`${pointer}/inline/${inline.length}`, v.loc);
          inline.push(v.value);
        }
      }
      if (inline.length === 0) return;
      this.at(pointer, kindV.loc);
      steps.push({ kind: 'shell', inline });
      return;
    }
    const cs = this.r.children('provision "file"', kids, ['source', 'destination']);
    const src = cs.find((c) => c.name === 'source');
    const dst = cs.find((c) => c.name === 'destination');
    if (!src || !dst) {
      this.r.error(
        kindV.loc,
        `this file provisioner has no ${!src ? 'source' : 'destination'}`,
        !src ? 'add source "config/app.conf"' : 'add destination "/etc/app/app.conf"',
      );
      return;
    }
    const s = this.r.string(src);
    const d = this.r.string(dst);
    const abs = s && this.existingPath(s, 'the source file', 'any');
    if (d && !d.value.startsWith('/')) {
      this.r.error(
        d.loc,
        `destination "${d.value}" is not an absolute path in the guest`,
        `write destination "/${d.value.replace(/^\.?\/*/, '')}"`,
      );
      return;
    }
    if (!s || !d || !abs) return;
    this.at(pointer, kindV.loc);
    this.at(`${pointer}/source`, s.loc);
    this.at(`${pointer}/destination`, d.loc);
    steps.push({ kind: 'file', source: abs, destination: d.value });
  }

  port(n: KNode): void {
    const ports = (this.draft.ports ??= []);
    for (const v of this.r.strings(n)) {
      const p = parsePortSpec(v.value);
      if (!p.ok) {
        this.r.error(v.loc, p.message, p.hint);
        continue;
      }
      this.at(`/ports/${ports.length}`, v.loc);
      ports.push({
        hostAddress: p.value.hostAddress ?? DEFAULTS.hostAddress,
        hostPort: p.value.hostPort ?? null,
        guestPort: p.value.guestPort,
        protocol: p.value.protocol,
      });
    }
  }

  volume(n: KNode): void {
    if (n.children !== null) {
      this.r.error(
        n.childrenLoc ?? n.loc,
        'volume inside a vm mounts a volume and takes no block',
        `write volume "${typeof n.args[0]?.value === 'string' ? n.args[0].value : 'data'}:/mount/point"; declare named volumes with a size at the top level, outside the vm`,
      );
      return;
    }
    const vols = (this.draft.volumes ??= []) as VmSpec['volumes'];
    for (const v of this.r.strings(n)) {
      const p = parseVolumeSpec(v.value);
      if (!p.ok) {
        this.r.error(v.loc, p.message, p.hint);
        continue;
      }
      if (p.value.kind === 'host') {
        const abs = this.existingPath({ value: p.value.source, loc: v.loc }, 'the host folder', 'any');
        if (!abs) continue;
        this.at(`/volumes/${vols.length}`, v.loc);
        vols.push({ ...p.value, source: abs });
      } else {
        this.at(`/volumes/${vols.length}`, v.loc);
        vols.push(p.value);
      }
    }
  }

  dependsOn(n: KNode): void {
    const deps = (this.draft.dependsOn ??= []);
    for (const v of this.r.strings(n)) {
      this.at(`/dependsOn/${deps.length}`, v.loc);
      deps.push(v.value);
    }
  }

  extraArgs(n: KNode): void {
    const args = (this.draft.extraArgs ??= []);
    for (const v of this.r.strings(n)) {
      this.at(`/extraArgs/${args.length}`, v.loc);
      args.push(v.value);
    }
  }

  device(n: KNode): void {
    const s = this.r.string(n, true);
    if (!s) return;
    if (!PCI_RE.test(s.value)) {
      this.r.error(s.loc, `device "${s.value}" is not a PCI address`, 'write device "0000:01:00.0" (as lspci -D shows it)');
      return;
    }
    let romFile: string | null = null;
    if (n.children !== null) {
      for (const c of this.r.children('device', n.children, ['rom-file'])) {
        const v = this.r.string(c);
        const abs = v && this.existingPath(v, 'the rom-file');
        if (!abs) return;
        romFile = abs;
      }
    }
    const devs = (this.draft.devices ??= []);
    this.at(`/devices/${devs.length}`, s.loc);
    devs.push({ pci: s.value, romFile });
  }

  /** `timeouts { start "1m"; ssh "10m"; login "5m"; cloud-init "20m" }`: readiness stage limits. */
  timeouts(n: KNode): void {
    const kids = this.r.block(n);
    if (!kids) return;
    this.r.noProps(n);
    const t: NonNullable<VmDraft['timeouts']> = (this.draft.timeouts ??= {});
    for (const c of this.r.children('timeouts', kids, ['start', 'ssh', 'login', 'cloud-init'])) {
      const v = this.duration(c, 0.000001);
      if (!v) continue;
      const key = c.name === 'cloud-init' ? 'cloudInit' : (c.name as 'start' | 'ssh' | 'login');
      t[key] = v.value;
      this.at(`/timeouts/${key}`, v.loc);
    }
  }

  healthcheck(n: KNode): void {
    const kids = this.r.block(n);
    if (!kids) return;
    this.r.noProps(n);
    const hc: NonNullable<VmDraft['healthcheck']> = {};
    let hasTest = false;
    for (const c of this.r.children('healthcheck', kids, ['test', 'interval', 'retries', 'start-period', 'timeout'])) {
      if (c.name === 'test') {
        const vs = this.r.strings(c);
        if (vs.length === 0) continue;
        hasTest = true;
        hc.test = vs.length === 1 ? ['sh', '-c', vs[0].value] : vs.map((v) => v.value);
        this.at('/healthcheck/test', vs[0].loc);
      } else if (c.name === 'retries') {
        const v = this.r.wholeNumber(c, { min: 1 });
        if (v) {
          hc.retries = v.value;
          this.at('/healthcheck/retries', v.loc);
        }
      } else {
        const v = this.duration(c, c.name === 'start-period' ? 0 : 0.000001);
        if (!v) continue;
        const key = c.name === 'start-period' ? 'startPeriod' : (c.name as 'interval' | 'timeout');
        hc[key] = v.value;
        this.at(`/healthcheck/${key}`, v.loc);
      }
    }
    if (!hasTest) {
      if (!kids.some((k) => k.name === 'test')) this.r.error(n.loc, 'healthcheck has no test', 'add test "curl -f http://localhost"');
      return;
    }
    this.draft.healthcheck = hc;
    this.at('/healthcheck', n.loc);
  }
}

/** Reads one `vm` node; undefined when it cannot become a VM (the problems are in `r`). */
export function readVm(r: KdlReader, node: KNode, ctx: KdlContext): LoadedVm | undefined {
  const before = r.count;
  r.noProps(node);
  const nameV = node.args[0];
  if (!nameV) {
    r.error(node.loc, 'vm needs a name', 'write vm "web" { image "debian:12" }');
    return undefined;
  }
  if (node.args.length > 1)
    r.error(node.args[1].loc, `vm takes one name, not ${node.args.length} values`, `write vm ${quote(nameV.value)} { ... }`);
  if (typeof nameV.value !== 'string') {
    r.error(nameV.loc, `the vm name must be a string, not ${quote(nameV.value)}`, `write vm "vm-${String(nameV.value)}" { ... }`);
    return undefined;
  }
  const name = nameV.value;
  const problem = nameProblem(name);
  if (problem) r.error(nameV.loc, problem, `write vm "${suggestName(name)}"`);
  if (node.children === null) {
    r.error(node.loc, `vm "${name}" needs a block { ... } with at least an image`, `write vm "${name}" { image "debian:12" }`);
    return undefined;
  }
  const vm = new VmReader(r, ctx);
  const loc = nameV.loc;
  const kids = r.children(`vm "${name}"`, node.children, VM_NODES, VM_REPEATABLE);
  vm.image(kids, loc, name);
  for (const c of kids) {
    switch (c.name) {
      case 'image':
      case 'image-url':
        break;
      case 'checksum':
      case 'image-format':
      case 'image-os':
        vm.imageExtras(c);
        break;
      case 'network':
        vm.network(c);
        break;
      case 'cloud-init':
        vm.cloudInit(c);
        break;
      case 'ssh':
        vm.ssh(c);
        break;
      case 'provision':
        vm.provision(c);
        break;
      case 'port':
        vm.port(c);
        break;
      case 'volume':
        vm.volume(c);
        break;
      case 'depends-on':
        vm.dependsOn(c);
        break;
      case 'extra-args':
        vm.extraArgs(c);
        break;
      case 'device':
        vm.device(c);
        break;
      case 'healthcheck':
        vm.healthcheck(c);
        break;
      case 'timeouts':
        vm.timeouts(c);
        break;
      default:
        vm.scalar(c);
    }
  }
  if (r.count > before || !vm.draft.image) return undefined;
  return { draft: { ...vm.draft, name, image: vm.draft.image }, loc: { ...node.loc }, fieldLocs: { '/name': loc, ...vm.fieldLocs } };
}
