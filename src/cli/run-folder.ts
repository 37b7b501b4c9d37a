/**
 * The ad-hoc VM folder of `tend run` and `tend create`: the options they share, the tend.yaml
 * built from their flags (validated like any project file), and the folder under
 * `<state>/run/<name>/` that holds it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { escapeDollars } from '../load/interpolate.js';
import { NAME_RE } from '../../schemas/names.js';
import { UsageError } from '../../schemas/errors.js';
import { memoryWithUnitToMiB } from '../../schemas/units.js';
import { isHostPath, parseVolumeSpec } from '../load/volumes.js';
import { parsePortSpec } from '../load/ports.js';
import { RUN_FILE, runDir } from '../state/paths.js';
import { loadContext, resolveStateRoot, type GlobalOptions } from './context.js';
import type { TendEvent } from '../../schemas/ports.js';

export interface RunCommandOptions extends GlobalOptions {
  image: string;
  cpus?: number;
  /** MiB, or "2G" / "512M" */
  memory?: string | number;
  ports?: string[];
  volumes?: string[];
  packages?: string[];
  runcmd?: string[];
  /** holos: PCI devices to pass through (--device 0000:01:00.0) */
  devices?: string[];
  /** holos: OS family of a custom image (--image-os openrc) */
  imageOs?: string;
  /** holos: the user cloud-init creates (--user) */
  user?: string;
  /** holos: UEFI firmware (--uefi) */
  uefi?: boolean;
  /** holos: a Dockerfile run as provisioning (--dockerfile); its FROM is the image when none is given */
  dockerfile?: string;
  name?: string;
  /** vmctl create: disk size in GiB (--disk) */
  diskGb?: number;
  /** vmctl create: TAP networking on this host bridge (--bridge) */
  bridge?: string;
  /** vmctl create: a cloud-init user-data file used as is (--cloud-init) */
  userData?: string;
  /** vmctl create: public key files for the login user (--ssh-key) */
  sshKeys?: string[];
  /** destroy the VM (and its run folder) after CMD ran */
  rm?: boolean;
  /**
   * start from a warm template of the same image and settings when there is one; keep one when
   * not (docs/warm.md). `tend run`'s default is true (false with --no-warm); `tend create`'s false.
   */
  warm?: boolean;
  /** run over SSH once Ready */
  command?: string[];
  onEvent?: (e: TendEvent) => void;
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

/** "debian:12" -> "debian-12", "./img/base.qcow2" -> "base", "https://x/y/noble.img" -> "noble". */
export function nameFromImage(image: string): string {
  const last = basename(image.split('?')[0])
    .replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|xz|zst)$/g, '')
    .replace(/\.(qcow2|img|raw)$/, '');
  const n = last
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return n || 'vm';
}

export function parseMemory(v: string | number): number {
  const mib = typeof v === 'number' || /^\d+$/.test(v.trim()) ? Number(v) : memoryWithUnitToMiB(v);
  if (mib === null || !Number.isFinite(mib))
    throw new UsageError(`--memory "${v}" is not a size: write MiB (2048) or 2G / 512M`, 'BadMemory');
  return mib;
}

/** The tend.yaml of an ad-hoc VM (host paths made absolute against `cwd`). Validates the flags. */
export function runProjectYaml(o: RunCommandOptions, name: string, cwd: string, verb = 'run'): string {
  const svc: Record<string, unknown> = {};
  if (o.image) svc.image = /^(\.|~|\/)/.test(o.image) && !o.image.startsWith('~') ? resolve(cwd, o.image) : o.image;
  if (o.dockerfile) svc.dockerfile = resolve(cwd, o.dockerfile);
  if (o.imageOs) svc.image_os = o.imageOs;
  if (o.devices?.length) svc.devices = o.devices.map((pci) => ({ pci }));
  const vm: Record<string, unknown> = {};
  if (o.uefi) vm.uefi = true;
  if (o.cpus !== undefined) {
    if (!Number.isInteger(o.cpus) || o.cpus < 1) throw new UsageError(`--cpus wants a whole number >= 1, got ${o.cpus}`, 'BadCpus');
    vm.vcpu = o.cpus;
  }
  if (o.memory !== undefined) vm.memory_mb = parseMemory(o.memory);
  if (o.diskGb !== undefined) {
    if (!Number.isInteger(o.diskGb) || o.diskGb < 1)
      throw new UsageError(`--disk wants a whole number of GB >= 1, got ${o.diskGb}`, 'BadDisk');
    vm.disk_size = o.diskGb;
  }
  if (Object.keys(vm).length) svc.vm = vm;
  if (o.bridge) svc.network = { mode: 'tap', bridge: o.bridge };
  if (o.ports?.length) {
    for (const p of o.ports) {
      const r = parsePortSpec(p);
      if (!r.ok) throw new UsageError(`-p ${p}: ${r.message}${r.hint ? ` (${r.hint})` : ''}`, 'BadPort');
    }
    svc.ports = [...o.ports];
  }
  const named: Record<string, object> = {};
  if (o.volumes?.length) {
    svc.volumes = o.volumes.map((v) => {
      const r = parseVolumeSpec(v);
      if (!r.ok) throw new UsageError(`-v ${v}: ${r.message}${r.hint ? ` (${r.hint})` : ''}`, 'BadVolume');
      if (r.value.kind === 'named') {
        named[r.value.name] = {};
        return v;
      }
      const src = r.value.source;
      const abs = isHostPath(src) && !src.startsWith('~') ? resolve(cwd, src) : src;
      return `${abs}:${r.value.target}${r.value.readOnly ? ':ro' : ''}`;
    });
  }
  const ci: Record<string, unknown> = {};
  if (o.packages?.length) ci.packages = [...o.packages];
  if (o.runcmd?.length) ci.runcmd = [...o.runcmd];
  if (o.user) ci.user = o.user;
  if (o.sshKeys?.length) ci.ssh_authorized_keys = o.sshKeys.map((k) => (k.startsWith('~') ? k : resolve(cwd, k)));
  if (o.userData) {
    if (Object.keys(ci).length) {
      throw new UsageError(
        'a --cloud-init user-data file is used as is: put packages, commands, users and keys in it rather than in other flags',
        'ConflictingOptions',
      );
    }
    ci.user_data = resolve(cwd, o.userData);
  }
  if (Object.keys(ci).length) svc.cloud_init = ci;
  svc.disposable = true;
  // `tend run` is warm unless --no-warm: a second run of the same image and settings is a clone
  if (o.warm ?? verb === 'run') svc.warm = true;
  const doc: Record<string, unknown> = { name, services: { [name]: svc } };
  if (Object.keys(named).length) doc.volumes = named;
  return `# written by \`tend ${verb}\`; remove with: tend down ${name} --destroy (or tend -f <this file> down --destroy)\n${stringify(escapeDollars(doc), { lineWidth: 0 })}`;
}

/** Does `tend <command> NAME`, typed in `o.cwd` without -f, reach the run VM? (Not when a project VM has its name.) */
async function reachableByName(o: RunCommandOptions, root: string, name: string): Promise<boolean> {
  const { file: _file, project: _project, ...rest } = o;
  return loadContext({ ...rest, stateDir: root }, name).then(
    (ctx) => ctx.run?.name === name,
    () => false,
  );
}

export interface RunFolder {
  name: string;
  /** `<state>/run/NAME` */
  dir: string;
  /** its tend.yaml */
  file: string;
  root: string;
  byName: boolean;
}

/**
 * Writes `<state>/run/NAME/tend.yaml` for an ad-hoc VM (`tend run`, `tend create`). An existing
 * run of that name is refused unless `replace` (run --name reuses it), and always for create.
 */
export async function writeRunFolder(o: RunCommandOptions, verb: 'run' | 'create' = 'run'): Promise<RunFolder> {
  const cwd = o.cwd ?? process.cwd();
  const root = resolveStateRoot(o);
  const name = o.name ?? `${nameFromImage(o.image)}-${randomBytes(2).toString('hex')}`;
  if (!NAME_RE.test(name)) {
    throw new UsageError(`--name "${name}" is not a valid VM name: lower-case letters, digits and "-" (at most 63)`, 'BadName');
  }
  const dir = runDir(root, name);
  const file = join(dir, RUN_FILE);
  if (existsSync(file) && (!o.name || verb === 'create')) {
    throw new UsageError(
      `a run VM named ${name} exists already (${file}): pick another --name, or remove it with tend down ${name} --destroy`,
      'NameTaken',
    );
  }
  const yaml = runProjectYaml(o, name, cwd, verb);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(file, yaml, { mode: 0o600 });
  return { name, dir, file, root, byName: await reachableByName(o, root, name) };
}
