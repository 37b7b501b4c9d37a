/**
 * One compose service → its VM drafts (one per replica), with the checks the JSON Schema cannot
 * express: names, units, files that must exist, port and volume syntax, durations. Values that
 * fail a check are left out of the draft (the diagnostic already says why), so later checks on
 * the canonical model do not report them twice.
 */
import { readFileSync, statSync } from 'node:fs';
import type { CloudInitSpec, ImageSource, SourceLocation, VmSpec } from '../../schemas/model.js';
import { DEFAULTS, type VmDraft } from '../../schemas/defaults.js';
import { looksLikeCatalogName, normalizeChecksum, resolvePath, urlProblem, type LoadedVm } from './common.js';
import { nameProblem } from '../../schemas/names.js';
import { diskSizeToGiB, parseDuration } from '../../schemas/units.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import type { YamlLocator, YamlPath } from './compose-yaml.js';
import { context, fieldName } from './compose-schema.js';
import { parsePortSpec } from './ports.js';
import { parseVolumeSpec, VOLUME_NAME_RE } from './volumes.js';

export const MAX_REPLICAS = 64;

export interface ComposeContext {
  file: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  loc: YamlLocator;
  diagnostics: Diagnostic[];
  /** JSON pointers (into the YAML) ajv already complained about */
  flagged: Set<string>;
  /** replicas of every service of this file, for depends_on expansion */
  replicasOf: Map<string, number>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
const pointer = (p: YamlPath): string => (p.length ? '/' + p.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/') : '');

export function report(ctx: ComposeContext, path: YamlPath, message: string, hint?: string, at: 'key' | 'value' = 'value'): void {
  if (ctx.flagged.has(pointer(path))) return;
  const where = at === 'key' ? ctx.loc.key(path) : ctx.loc.value(path);
  ctx.diagnostics.push({ ...where, message, ...(hint ? { hint } : {}), severity: 'error' });
}

/** Instance names of a service: the service name, or <svc>-0 ... <svc>-N-1. */
export function instanceNames(svc: string, replicas: number): string[] {
  return replicas <= 1 ? [svc] : Array.from({ length: replicas }, (_, i) => `${svc}-${i}`);
}

export function replicasOf(raw: unknown): number {
  return isObj(raw) &&
    typeof raw.replicas === 'number' &&
    Number.isInteger(raw.replicas) &&
    raw.replicas >= 1 &&
    raw.replicas <= MAX_REPLICAS
    ? raw.replicas
    : 1;
}

/** A referenced local file: resolved, and reported at the value when it does not exist. */
function localPath(ctx: ComposeContext, path: YamlPath, value: string, what: string, kind: 'file' | 'dir' | 'any'): string | null {
  const abs = resolvePath(value, ctx.dir, ctx.env);
  let st;
  try {
    st = statSync(abs);
  } catch {
    report(
      ctx,
      path,
      `${what} "${value}" does not exist (looked for ${abs})`,
      'paths are relative to the folder of this file; ~ is your home folder',
    );
    return null;
  }
  if (kind === 'file' && !st.isFile()) {
    report(ctx, path, `${what} "${value}" is not a file`);
    return null;
  }
  if (kind === 'dir' && !st.isDirectory()) {
    report(ctx, path, `${what} "${value}" is not a folder`);
    return null;
  }
  return abs;
}

function duration(ctx: ComposeContext, path: YamlPath, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = parseDuration(v);
  if (s === null) {
    report(
      ctx,
      path,
      `${fieldName(path)} in ${context(path.slice(0, -1))} is not a duration: ${typeof v === 'string' ? `"${v}"` : v}`,
      'write e.g. "30s", "1m30s", "500ms" or a number of seconds',
    );
    return undefined;
  }
  return s;
}

/** A size in whole GiB ("20G", 20), or undefined after reporting why not. */
export function sizeGiB(ctx: ComposeContext, path: YamlPath, v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  if (typeof v === 'number' && (!Number.isInteger(v) || v < 1)) return undefined; // ajv said so
  const g = diskSizeToGiB(v);
  const name = fieldName(path);
  if (g === null) {
    report(ctx, path, `${name} "${v}" is not a size`, `write a number of GiB (${name}: 20) or a size with a unit (${name}: 20G)`);
    return undefined;
  }
  if (g <= 0) {
    report(ctx, path, `${name} must be at least 1 GiB, not ${v}`);
    return undefined;
  }
  if (!Number.isInteger(g)) {
    report(ctx, path, `${name} must be a whole number of GiB: ${v} is ${g} GiB`, `write ${name}: ${Math.ceil(g)}G`);
    return undefined;
  }
  return g;
}

function image(ctx: ComposeContext, base: YamlPath, svc: Obj): ImageSource | null {
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

function cloudInit(
  ctx: ComposeContext,
  base: YamlPath,
  ci: unknown,
  locs: Record<string, SourceLocation>,
): Partial<CloudInitSpec> | null | undefined {
  if (ci === false) return null;
  if (!isObj(ci)) return undefined;
  const p = [...base, 'cloud_init'];
  locs['/cloudInit'] = ctx.loc.key(p);
  const out: Partial<CloudInitSpec> = {};
  if (typeof ci.user === 'string') {
    if (/^[a-z_][a-z0-9_-]{0,31}$/.test(ci.user)) out.user = ci.user;
    else
      report(
        ctx,
        [...p, 'user'],
        `cloud_init user "${ci.user}" is not a valid Linux user name`,
        'use lower-case letters, digits, "_" and "-", starting with a letter or "_"',
      );
  }
  if (typeof ci.hostname === 'string') {
    const problem = nameProblem(ci.hostname);
    if (problem) report(ctx, [...p, 'hostname'], `hostname ${problem.replace(/^the name /, '')}`);
    else out.hostname = ci.hostname;
  }
  const keys = strings(ci.ssh_authorized_keys);
  if (keys) {
    out.sshAuthorizedKeys = [];
    keys.forEach((k, i) => {
      if (/^(~|\.{1,2})?\//.test(k)) {
        const abs = localPath(ctx, [...p, 'ssh_authorized_keys', i], k, 'the public key file', 'file');
        if (abs) out.sshAuthorizedKeys?.push(readFileSync(abs, 'utf8').trim());
      } else if (/^(ssh-|ecdsa-|sk-)/.test(k.trim())) {
        out.sshAuthorizedKeys?.push(k.trim());
      } else {
        report(
          ctx,
          [...p, 'ssh_authorized_keys', i],
          `ssh_authorized_keys item ${i + 1} is neither a public key nor a path to one`,
          'write the key itself ("ssh-ed25519 AAAA...") or a path such as ~/.ssh/id_ed25519.pub',
        );
      }
    });
  }
  for (const [k, field] of [
    ['packages', 'packages'],
    ['runcmd', 'runcmd'],
    ['bootcmd', 'bootcmd'],
  ] as const) {
    const v = strings(ci[k]);
    if (v) out[field] = v;
  }
  if (Array.isArray(ci.write_files)) {
    const files: CloudInitSpec['writeFiles'] = [];
    ci.write_files.forEach((f, i) => {
      if (!isObj(f) || typeof f.path !== 'string') return;
      const fp = [...p, 'write_files', i];
      locs[`/cloudInit/writeFiles/${i}`] = ctx.loc.value(fp);
      if (!f.path.startsWith('/'))
        report(
          ctx,
          [...fp, 'path'],
          `write_files path "${f.path}" is not an absolute path in the guest`,
          `write /${f.path.replace(/^\.?\/*/, '')}`,
        );
      if (typeof f.permissions === 'string' && !/^0?[0-7]{3,4}$/.test(f.permissions)) {
        report(ctx, [...fp, 'permissions'], `permissions "${f.permissions}" is not an octal mode`, 'write e.g. "0644" (quoted)');
      }
      files.push({
        path: f.path,
        content: typeof f.content === 'string' ? f.content : '',
        permissions: typeof f.permissions === 'string' ? f.permissions : null,
        owner: typeof f.owner === 'string' ? f.owner : null,
      });
    });
    out.writeFiles = files;
  }
  if (typeof ci.user_data === 'string') {
    const others = Object.keys(ci).filter((k) => k !== 'user_data' && k !== 'hostname');
    if (others.length) {
      report(
        ctx,
        [...p, 'user_data'],
        `user_data is used as is, so ${others.map((k) => `\`${k}\``).join(', ')} in the same cloud_init would be ignored`,
        'put everything in the user-data file, or drop user_data and use the keys',
      );
    }
    const abs = localPath(ctx, [...p, 'user_data'], ci.user_data, 'the user-data file', 'file');
    if (abs) {
      out.userData = abs;
      locs['/cloudInit/userData'] = ctx.loc.value([...p, 'user_data']);
    }
  }
  return out;
}

function healthcheck(ctx: ComposeContext, base: YamlPath, hc: unknown): VmDraft['healthcheck'] | null | undefined {
  if (!isObj(hc)) return undefined;
  const p = [...base, 'healthcheck'];
  if (hc.disable === true) return null;
  let test: string[] | undefined;
  const t = hc.test;
  if (typeof t === 'string') {
    if (t.trim() === '') report(ctx, [...p, 'test'], 'healthcheck test is empty');
    else test = ['sh', '-c', t];
  } else if (Array.isArray(t) && t.every((x) => typeof x === 'string') && t.length > 0) {
    const [head, ...rest] = t as string[];
    if (head === 'NONE') return null;
    if (head === 'CMD') {
      if (rest.length === 0)
        report(ctx, [...p, 'test'], 'healthcheck test ["CMD"] has no command', 'write ["CMD", "curl", "-f", "http://localhost"]');
      else test = rest;
    } else if (head === 'CMD-SHELL') {
      if (rest.length !== 1)
        report(
          ctx,
          [...p, 'test'],
          'healthcheck test ["CMD-SHELL", ...] takes exactly one shell command',
          'write ["CMD-SHELL", "curl -f http://localhost || exit 1"]',
        );
      else test = ['sh', '-c', rest[0]];
    } else {
      test = t as string[];
    }
  } else if (t === undefined) {
    report(
      ctx,
      p,
      `the healthcheck of ${context(base)} has no \`test\``,
      'add e.g. test: ["CMD", "curl", "-f", "http://localhost"]',
      'key',
    );
  }
  const out: NonNullable<VmDraft['healthcheck']> = {};
  if (test) out.test = test;
  const interval = duration(ctx, [...p, 'interval'], hc.interval);
  const timeout = duration(ctx, [...p, 'timeout'], hc.timeout);
  const start = duration(ctx, [...p, 'start_period'], hc.start_period);
  if (interval !== undefined) {
    if (interval <= 0) report(ctx, [...p, 'interval'], 'healthcheck interval must be more than 0s');
    else out.interval = interval;
  }
  if (timeout !== undefined) {
    if (timeout <= 0) report(ctx, [...p, 'timeout'], 'healthcheck timeout must be more than 0s');
    else out.timeout = timeout;
  }
  if (start !== undefined) out.startPeriod = start;
  if (typeof hc.retries === 'number' && Number.isInteger(hc.retries) && hc.retries >= 1) out.retries = hc.retries;
  return test ? out : undefined;
}

function provision(ctx: ComposeContext, base: YamlPath, steps: unknown, locs: Record<string, SourceLocation>): VmSpec['provision'] {
  const out: VmSpec['provision'] = [];
  if (!Array.isArray(steps)) return out;
  steps.forEach((step, i) => {
    const p = [...base, 'provision', i];
    if (!isObj(step)) return;
    const kinds = ['shell', 'script', 'file'].filter((k) => k in step);
    if (kinds.length !== 1) {
      if (Object.keys(step).length > 0 && !Object.keys(step).some((k) => ctx.flagged.has(pointer([...p, k])))) {
        report(
          ctx,
          p,
          kinds.length === 0
            ? `provision step ${i + 1} of ${context(base)} has none of shell, script, file`
            : `provision step ${i + 1} of ${context(base)} has ${kinds.join(' and ')}: a step does one thing`,
          'write one step per item: - shell: "apt-get update" / - script: ./setup.sh / - file: { source: ./app, destination: /opt/app }',
        );
      }
      return;
    }
    const k = out.length;
    locs[`/provision/${k}`] = ctx.loc.value(p);
    if (typeof step.shell === 'string' && step.shell.trim() !== '') out.push({ kind: 'shell', inline: [step.shell] });
    else if (strings(step.shell)?.length) out.push({ kind: 'shell', inline: step.shell as string[] });
    else if (typeof step.script === 'string' && step.script !== '') {
      const abs = localPath(ctx, [...p, 'script'], step.script, 'the provision script', 'file');
      if (abs) {
        locs[`/provision/${k}/script`] = ctx.loc.value([...p, 'script']);
        out.push({ kind: 'shell', script: abs });
      }
    } else if (isObj(step.file) && typeof step.file.source === 'string' && typeof step.file.destination === 'string') {
      const abs = localPath(ctx, [...p, 'file', 'source'], step.file.source, 'the file to upload', 'any');
      if (abs) {
        locs[`/provision/${k}/source`] = ctx.loc.value([...p, 'file', 'source']);
        out.push({ kind: 'file', source: abs, destination: step.file.destination });
      }
    }
  });
  return out;
}

/** Build the drafts of one service (one per replica). */
export function serviceToVms(ctx: ComposeContext, svcName: string, raw: unknown): LoadedVm[] {
  const base: YamlPath = ['services', svcName];
  const svcLoc = ctx.loc.key(base);
  const nameErr = nameProblem(svcName);
  if (nameErr)
    report(
      ctx,
      base,
      `service name ${nameErr.replace(/^the name /, '')}`,
      'service names become VM and host names: use lower-case letters, digits and "-"',
      'key',
    );
  if (!isObj(raw)) {
    if (raw === null) report(ctx, base, `service ${svcName} is empty`, 'give it at least an image: `image: debian:12`', 'key');
    return [];
  }
  const locs: Record<string, SourceLocation> = { '/name': svcLoc, '/service': svcLoc };
  const draft: Omit<VmDraft, 'name' | 'image'> & { image: ImageSource | null } = { image: image(ctx, base, raw), service: svcName };
  if (raw.image !== undefined) locs['/image'] = ctx.loc.value([...base, 'image']);

  const replicas = replicasOf(raw);
  if (replicas > 1 && !nameErr) {
    const longest = `${svcName}-${replicas - 1}`;
    const problem = nameProblem(longest);
    if (problem) report(ctx, [...base, 'replicas'], `the replica names would be invalid: ${problem}`, 'shorten the service name');
  }

  // vm { ... }
  const vm = raw.vm;
  if (isObj(vm)) {
    const vp = [...base, 'vm'];
    if (typeof vm.vcpu === 'number' && Number.isInteger(vm.vcpu) && vm.vcpu >= 1 && vm.vcpu <= 512) {
      draft.cpus = vm.vcpu;
      locs['/cpus'] = ctx.loc.value([...vp, 'vcpu']);
    }
    if (typeof vm.memory_mb === 'number' && Number.isInteger(vm.memory_mb) && vm.memory_mb >= 64) {
      draft.memory = vm.memory_mb;
      locs['/memory'] = ctx.loc.value([...vp, 'memory_mb']);
    }
    if (vm.disk_size !== undefined) {
      const g = sizeGiB(ctx, [...vp, 'disk_size'], vm.disk_size);
      if (g !== undefined) draft.disk = g;
      locs['/disk'] = ctx.loc.value([...vp, 'disk_size']);
    }
    if (typeof vm.machine === 'string' && vm.machine) {
      draft.machine = vm.machine;
      locs['/machine'] = ctx.loc.value([...vp, 'machine']);
    }
    if (typeof vm.cpu_model === 'string' && vm.cpu_model) {
      draft.cpuModel = vm.cpu_model;
      locs['/cpuModel'] = ctx.loc.value([...vp, 'cpu_model']);
    }
    const extra = strings(vm.extra_args);
    if (extra) {
      draft.extraArgs = extra;
      locs['/extraArgs'] = ctx.loc.value([...vp, 'extra_args']);
    }
    if (vm.uefi === true) {
      if (raw.firmware === 'bios')
        report(ctx, [...vp, 'uefi'], `vm.uefi: true contradicts firmware: bios in service ${svcName}`, 'keep one of them');
      else draft.firmware = 'uefi';
      locs['/firmware'] = ctx.loc.value([...vp, 'uefi']);
    }
  }
  for (const [key, field] of [
    ['firmware', 'firmware'],
    ['accel', 'accel'],
    ['restart', 'restart'],
    ['state', 'runState'],
  ] as const) {
    if (typeof raw[key] === 'string' && !ctx.flagged.has(pointer([...base, key]))) {
      if (key === 'firmware' && draft.firmware === 'uefi' && raw.firmware === 'bios') continue;
      (draft as Record<string, unknown>)[field] = raw[key];
      locs[`/${field}`] = ctx.loc.value([...base, key]);
    }
  }
  if (typeof raw.disposable === 'boolean') draft.disposable = raw.disposable;

  // network
  const net = raw.network;
  if (typeof net === 'string' && ['user', 'tap', 'none'].includes(net)) {
    draft.network = { mode: net as 'user' | 'tap' | 'none' };
    locs['/network'] = ctx.loc.value([...base, 'network']);
  } else if (isObj(net) && typeof net.mode === 'string' && ['user', 'tap', 'none'].includes(net.mode)) {
    locs['/network'] = ctx.loc.value([...base, 'network']);
    if (typeof net.bridge === 'string' && net.mode !== 'tap') {
      report(
        ctx,
        [...base, 'network', 'bridge'],
        `a bridge only applies to network mode tap, not ${net.mode}`,
        `write mode: tap, or remove bridge`,
      );
    } else {
      draft.network = { mode: net.mode as 'user' | 'tap' | 'none', bridge: typeof net.bridge === 'string' ? net.bridge : null };
    }
  }

  // ports
  if (Array.isArray(raw.ports)) {
    const ports: NonNullable<VmDraft['ports']> = [];
    raw.ports.forEach((item, i) => {
      const pp = [...base, 'ports', i];
      if (typeof item !== 'string' && typeof item !== 'number') return;
      const r = parsePortSpec(String(item));
      if (!r.ok) {
        report(ctx, pp, r.message, r.hint);
        return;
      }
      if (replicas > 1 && typeof r.value.hostPort === 'number') {
        report(
          ctx,
          pp,
          `service ${svcName} has ${replicas} replicas, so they cannot all use host port ${r.value.hostPort}`,
          `write "${r.value.guestPort}${r.value.protocol === 'udp' ? '/udp' : ''}" and tend picks a free host port per replica`,
        );
        return;
      }
      locs[`/ports/${ports.length}`] = ctx.loc.value(pp);
      ports.push({ ...r.value, hostAddress: r.value.hostAddress ?? DEFAULTS.hostAddress, hostPort: r.value.hostPort ?? null });
    });
    draft.ports = ports;
  }

  // volumes
  if (Array.isArray(raw.volumes)) {
    const vols: NonNullable<VmDraft['volumes']> = [];
    raw.volumes.forEach((item, i) => {
      const vp = [...base, 'volumes', i];
      if (typeof item !== 'string') return;
      const r = parseVolumeSpec(item);
      if (!r.ok) {
        report(ctx, vp, r.message, r.hint);
        return;
      }
      if (r.value.kind === 'host') {
        const abs = localPath(ctx, vp, r.value.source, 'the host folder', 'any');
        if (!abs) return;
        locs[`/volumes/${vols.length}`] = ctx.loc.value(vp);
        vols.push({ ...r.value, source: abs });
      } else {
        locs[`/volumes/${vols.length}`] = ctx.loc.value(vp);
        vols.push(r.value);
      }
    });
    draft.volumes = vols;
  }

  // devices
  if (Array.isArray(raw.devices)) {
    const devs: NonNullable<VmDraft['devices']> = [];
    raw.devices.forEach((d, i) => {
      const dp = [...base, 'devices', i];
      if (!isObj(d) || typeof d.pci !== 'string') return;
      if (!/^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(d.pci)) {
        report(ctx, [...dp, 'pci'], `pci "${d.pci}" is not a PCI address`, 'write "01:00.0" or "0000:01:00.0" (see lspci -D)');
        return;
      }
      let rom: string | null = null;
      if (typeof d.rom_file === 'string') {
        rom = localPath(ctx, [...dp, 'rom_file'], d.rom_file, 'the ROM file', 'file');
        if (!rom) return;
      }
      locs[`/devices/${devs.length}`] = ctx.loc.value(dp);
      devs.push({ pci: d.pci, romFile: rom });
    });
    draft.devices = devs;
  }

  // depends_on: list or compose map; a replicated dependency means all its instances
  const deps: { name: string; path: YamlPath }[] = [];
  if (Array.isArray(raw.depends_on))
    raw.depends_on.forEach((d, i) => typeof d === 'string' && deps.push({ name: d, path: [...base, 'depends_on', i] }));
  else if (isObj(raw.depends_on)) for (const d of Object.keys(raw.depends_on)) deps.push({ name: d, path: [...base, 'depends_on', d] });
  if (deps.length) {
    const expanded: string[] = [];
    for (const d of deps) {
      const n = ctx.replicasOf.get(d.name);
      const names = n === undefined ? [d.name] : instanceNames(d.name, n);
      for (const name of names) {
        locs[`/dependsOn/${expanded.length}`] = ctx.loc.key(d.path);
        expanded.push(name);
      }
    }
    draft.dependsOn = expanded;
  }

  const grace = duration(ctx, [...base, 'stop_grace_period'], raw.stop_grace_period);
  if (grace !== undefined) {
    draft.stopGracePeriod = grace;
    locs['/stopGracePeriod'] = ctx.loc.value([...base, 'stop_grace_period']);
  }

  if (isObj(raw.timeouts)) {
    const t: NonNullable<VmDraft['timeouts']> = {};
    for (const [key, field] of [
      ['start', 'start'],
      ['ssh', 'ssh'],
      ['login', 'login'],
      ['cloud_init', 'cloudInit'],
    ] as const) {
      const path = [...base, 'timeouts', key];
      const v = duration(ctx, path, raw.timeouts[key]);
      if (v === undefined) continue;
      if (v <= 0) {
        report(ctx, path, `timeouts.${key} in ${context(base)} must be more than 0s`);
        continue;
      }
      t[field] = v;
      locs[`/timeouts/${field}`] = ctx.loc.value(path);
    }
    draft.timeouts = t;
  }

  const ci = cloudInit(ctx, base, raw.cloud_init, locs);
  if (ci !== undefined) draft.cloudInit = ci;

  const hc = healthcheck(ctx, base, raw.healthcheck);
  if (hc !== undefined) {
    draft.healthcheck = hc;
    locs['/healthcheck'] = ctx.loc.key([...base, 'healthcheck']);
  }

  if (Array.isArray(raw.provision)) draft.provision = provision(ctx, base, raw.provision, locs);

  if (isObj(raw.ssh)) {
    const sp = [...base, 'ssh'];
    const ssh: NonNullable<VmDraft['ssh']> = {};
    if (typeof raw.ssh.user === 'string' && raw.ssh.user) ssh.user = raw.ssh.user;
    if (typeof raw.ssh.port === 'number' && Number.isInteger(raw.ssh.port) && raw.ssh.port >= 1 && raw.ssh.port <= 65535)
      ssh.port = raw.ssh.port;
    if (typeof raw.ssh.private_key === 'string' && raw.ssh.private_key) {
      const abs = localPath(ctx, [...sp, 'private_key'], raw.ssh.private_key, 'the private key', 'file');
      if (abs) {
        ssh.privateKey = abs;
        locs['/ssh/privateKey'] = ctx.loc.value([...sp, 'private_key']);
      }
    }
    locs['/ssh'] = ctx.loc.key(sp);
    draft.ssh = ssh;
  }

  if (!draft.image) return [];
  const img = draft.image;
  return instanceNames(svcName, replicas).map((name, i) => {
    const d: VmDraft = { ...structuredClone(draft), image: { ...img }, name };
    if (replicas > 1 && d.cloudInit && typeof d.cloudInit.hostname === 'string') d.cloudInit.hostname = `${d.cloudInit.hostname}-${i}`;
    return { draft: d, loc: svcLoc, fieldLocs: { ...locs } };
  });
}

/** Top-level named volumes: name -> size GiB (default 10). */
export function namedVolumes(
  ctx: ComposeContext,
  raw: unknown,
): { volumes: Record<string, { size: number }>; locs: Record<string, SourceLocation> } {
  const volumes: Record<string, { size: number }> = {};
  const locs: Record<string, SourceLocation> = {};
  if (!isObj(raw)) return { volumes, locs };
  for (const [name, v] of Object.entries(raw)) {
    const p = ['volumes', name];
    if (!VOLUME_NAME_RE.test(name)) {
      report(ctx, p, `volume name "${name}" cannot be a file name`, 'use letters, digits, "_", "." and "-"', 'key');
      continue;
    }
    let size = 10;
    if (isObj(v) && v.size !== undefined) {
      const g = sizeGiB(ctx, [...p, 'size'], v.size);
      if (g === undefined) continue;
      size = g;
    }
    volumes[name] = { size };
    locs[name] = ctx.loc.key(p);
  }
  return { volumes, locs };
}
