/**
 * The list-valued keys of a tend.yaml service, each item checked and placed on its own:
 * ports, volumes, devices, depends_on (replicas expanded), provision steps.
 */
import type { VmDraft } from '../../schemas/defaults.js';
import { DEFAULTS } from '../../schemas/defaults.js';
import type { VmSpec } from '../../schemas/model.js';
import { parsePortSpec } from './ports.js';
import { parseVolumeSpec } from './volumes.js';
import { context } from './compose-schema.js';
import type { YamlPath } from './compose-yaml.js';
import { isObj, localPath, pointer, report, strings, type ComposeContext, type Svc } from './compose-ctx.js';

/** Instance names of a service: the service name, or <svc>-0 ... <svc>-N-1. */
export function instanceNames(svc: string, replicas: number): string[] {
  return replicas <= 1 ? [svc] : Array.from({ length: replicas }, (_, i) => `${svc}-${i}`);
}

export function ports(s: Svc, svcName: string, replicas: number): void {
  const { raw, base, ctx } = s;
  if (!Array.isArray(raw.ports)) return;
  const out: NonNullable<VmDraft['ports']> = [];
  raw.ports.forEach((item, i) => {
    const pp = [...base, 'ports', i];
    if (typeof item !== 'string' && typeof item !== 'number') return;
    const r = parsePortSpec(String(item));
    if (!r.ok) {
      report(ctx, pp, r.message, r.hint);
      return;
    }
    if (ctx.holos && r.value.protocol !== 'tcp') {
      report(
        ctx,
        pp,
        `"${String(item)}": a holos.yaml forwards TCP only (as holos does)`,
        'rename the file to tend.yaml to forward UDP too',
      );
      return;
    }
    const host = r.value.hostPort;
    if (replicas > 1 && typeof host === 'number') {
      // holos' rule: replica i gets host port + i
      if (host + replicas - 1 > 65535) {
        report(
          ctx,
          pp,
          `service ${svcName} has ${replicas} replicas: replica ${replicas - 1} would get host port ${host + replicas - 1} (${host} + ${replicas - 1}), above 65535`,
          `replica i gets host port ${host} + i (as in holos): choose a lower host port, or write "${r.value.guestPort}" to let tend pick`,
        );
        return;
      }
      const clash = out.find(
        (o) =>
          typeof o.hostPort === 'number' &&
          o.protocol === r.value.protocol &&
          Math.abs(o.hostPort - host) < replicas &&
          (o.hostAddress === (r.value.hostAddress ?? DEFAULTS.hostAddress) ||
            o.hostAddress === '0.0.0.0' ||
            r.value.hostAddress === '0.0.0.0'),
      );
      if (clash && typeof clash.hostPort === 'number') {
        const [lo, hi] = clash.hostPort < host ? [clash.hostPort, host] : [host, clash.hostPort];
        report(
          ctx,
          pp,
          `service ${svcName} has ${replicas} replicas, so host ports ${lo} and ${hi} collide: replica ${hi - lo} of ${lo} gets ${hi}`,
          `replica i gets host port + i (as in holos): keep fixed host ports at least ${replicas} apart`,
        );
        return;
      }
    }
    s.draft.at(`/ports/${out.length}`, ctx.loc.value(pp));
    out.push({ ...r.value, hostAddress: r.value.hostAddress ?? DEFAULTS.hostAddress, hostPort: r.value.hostPort ?? null });
  });
  s.draft.set('/ports', out);
}

export function volumes(s: Svc): void {
  const { raw, base, ctx } = s;
  if (!Array.isArray(raw.volumes)) return;
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
      s.draft.at(`/volumes/${vols.length}`, ctx.loc.value(vp));
      vols.push({ ...r.value, source: abs });
    } else {
      s.draft.at(`/volumes/${vols.length}`, ctx.loc.value(vp));
      vols.push(r.value);
    }
  });
  s.draft.set('/volumes', vols);
}

export function devices(s: Svc): void {
  const { raw, base, ctx } = s;
  if (!Array.isArray(raw.devices)) return;
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
    s.draft.at(`/devices/${devs.length}`, ctx.loc.value(dp));
    devs.push({ pci: d.pci, romFile: rom });
  });
  s.draft.set('/devices', devs);
}

/** depends_on: a list or compose's map; a replicated dependency means all its instances. */
export function dependsOn(s: Svc): void {
  const { raw, base, ctx } = s;
  const deps: { name: string; path: YamlPath }[] = [];
  if (Array.isArray(raw.depends_on))
    raw.depends_on.forEach((d, i) => typeof d === 'string' && deps.push({ name: d, path: [...base, 'depends_on', i] }));
  else if (isObj(raw.depends_on)) for (const d of Object.keys(raw.depends_on)) deps.push({ name: d, path: [...base, 'depends_on', d] });
  if (!deps.length) return;
  const expanded: string[] = [];
  for (const d of deps) {
    const n = ctx.replicasOf.get(d.name);
    for (const name of n === undefined ? [d.name] : instanceNames(d.name, n)) {
      s.draft.at(`/dependsOn/${expanded.length}`, ctx.loc.key(d.path));
      expanded.push(name);
    }
  }
  s.draft.set('/dependsOn', expanded);
}

export function provision(s: Svc): void {
  const { raw, base, ctx } = s;
  if (!Array.isArray(raw.provision)) return;
  const out: VmSpec['provision'] = [];
  raw.provision.forEach((step, i) => {
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
    s.draft.at(`/provision/${k}`, ctx.loc.value(p));
    if (typeof step.shell === 'string' && step.shell.trim() !== '') out.push({ kind: 'shell', inline: [step.shell] });
    else if (strings(step.shell)?.length) out.push({ kind: 'shell', inline: step.shell as string[] });
    else if (typeof step.script === 'string' && step.script !== '') {
      const abs = localPath(ctx, [...p, 'script'], step.script, 'the provision script', 'file');
      if (abs) {
        s.draft.at(`/provision/${k}/script`, ctx.loc.value([...p, 'script']));
        out.push({ kind: 'shell', script: abs });
      }
    } else if (isObj(step.file) && typeof step.file.source === 'string' && typeof step.file.destination === 'string') {
      const abs = localPath(ctx, [...p, 'file', 'source'], step.file.source, 'the file to upload', 'any');
      if (abs) {
        s.draft.at(`/provision/${k}/source`, ctx.loc.value([...p, 'file', 'source']));
        out.push({ kind: 'file', source: abs, destination: step.file.destination });
      }
    }
  });
  s.draft.set('/provision', out);
}

export type { ComposeContext };
