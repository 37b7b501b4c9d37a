/**
 * Defaults, applied in one place. Loaders produce a `VmDraft` (only what the file said,
 * already converted to canonical units) and `applyDefaults` turns it into a full `VmSpec`.
 */
import type { CloudInitSpec, ImageSource, SshSpec, VmSpec } from './model.js';

export const DEFAULTS = {
  cpus: 1,
  memory: 1024,
  machine: 'q35',
  firmware: 'bios',
  accel: 'auto',
  restart: 'always',
  runState: 'running',
  stopGracePeriod: 30,
  /** stock images boot with it (docs/decisions.md: the video device) */
  video: 'vga',
  graphics: 'none',
  sshPort: 22,
  hostAddress: '127.0.0.1',
  healthcheck: { interval: 30, retries: 3, startPeriod: 0, timeout: 30 },
} as const;

type DeepPartial<T> = T extends readonly (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export type VmDraft = { name: string; image: ImageSource } & DeepPartial<Omit<VmSpec, 'name' | 'image' | 'cloudInit' | 'ssh'>> & {
    cloudInit?: Partial<CloudInitSpec> | null;
    ssh?: Partial<SshSpec>;
  };

export function defaultCloudInit(partial: Partial<CloudInitSpec> = {}): CloudInitSpec {
  return {
    hostname: partial.hostname ?? null,
    user: partial.user ?? null,
    sshAuthorizedKeys: partial.sshAuthorizedKeys ?? [],
    userData: partial.userData ?? null,
    packages: partial.packages ?? [],
    writeFiles: (partial.writeFiles ?? []).map((f) => ({
      path: f.path,
      content: f.content,
      permissions: f.permissions ?? null,
      owner: f.owner ?? null,
    })),
    runcmd: partial.runcmd ?? [],
    bootcmd: partial.bootcmd ?? [],
    ...(partial.adoptUser !== undefined ? { adoptUser: partial.adoptUser } : {}),
    ...(partial.timezone !== undefined ? { timezone: partial.timezone } : {}),
    ...(partial.networkConfig !== undefined ? { networkConfig: partial.networkConfig } : {}),
  };
}

export function applyDefaults(d: VmDraft): VmSpec {
  return {
    name: d.name,
    service: d.service ?? d.name,
    image: {
      kind: d.image.kind,
      ref: d.image.ref,
      format: d.image.format ?? null,
      checksum: d.image.checksum ?? null,
      os: d.image.os ?? null,
      ...(d.image.sidecar !== undefined ? { sidecar: d.image.sidecar } : {}),
      ...(d.image.bootc !== undefined ? { bootc: d.image.bootc } : {}),
    },
    cpus: d.cpus ?? DEFAULTS.cpus,
    memory: d.memory ?? DEFAULTS.memory,
    disk: d.disk ?? null,
    machine: d.machine ?? DEFAULTS.machine,
    cpuModel: d.cpuModel ?? null,
    firmware: d.firmware ?? DEFAULTS.firmware,
    accel: d.accel ?? DEFAULTS.accel,
    network: { mode: d.network?.mode ?? 'user', bridge: d.network?.bridge ?? null },
    ports: (d.ports ?? []).map((p) => ({
      hostAddress: p.hostAddress ?? DEFAULTS.hostAddress,
      hostPort: p.hostPort ?? null,
      guestPort: p.guestPort as number,
      protocol: p.protocol ?? 'tcp',
    })),
    // cloud-init is on by default (every cloud image needs it for the SSH key); null = off
    cloudInit: d.cloudInit === null ? null : defaultCloudInit(d.cloudInit ?? {}),
    ssh: { user: d.ssh?.user ?? null, privateKey: d.ssh?.privateKey ?? null, port: d.ssh?.port ?? DEFAULTS.sshPort },
    provision: (d.provision ?? []) as VmSpec['provision'],
    volumes: (d.volumes ?? []) as VmSpec['volumes'],
    devices: (d.devices ?? []).map((x) => ({ pci: x.pci as string, romFile: x.romFile ?? null })),
    extraArgs: d.extraArgs ?? [],
    video: d.video ?? DEFAULTS.video,
    graphics: d.graphics ?? DEFAULTS.graphics,
    dependsOn: d.dependsOn ?? [],
    healthcheck: d.healthcheck
      ? {
          test: d.healthcheck.test as string[],
          interval: d.healthcheck.interval ?? DEFAULTS.healthcheck.interval,
          retries: d.healthcheck.retries ?? DEFAULTS.healthcheck.retries,
          startPeriod: d.healthcheck.startPeriod ?? DEFAULTS.healthcheck.startPeriod,
          timeout: d.healthcheck.timeout ?? DEFAULTS.healthcheck.timeout,
        }
      : null,
    restart: d.restart ?? DEFAULTS.restart,
    runState: d.runState ?? DEFAULTS.runState,
    disposable: d.disposable ?? false,
    stopGracePeriod: d.stopGracePeriod ?? DEFAULTS.stopGracePeriod,
    ...(d.stopMode !== undefined ? { stopMode: d.stopMode } : {}),
    ...(d.warm === true ? { warm: true } : {}),
    timeouts: {
      start: d.timeouts?.start ?? null,
      ssh: d.timeouts?.ssh ?? null,
      login: d.timeouts?.login ?? null,
      cloudInit: d.timeouts?.cloudInit ?? null,
    },
    // backend selection: absent = the command's flag, the environment, then qemu (src/backend/select.ts)
    ...(d.backend !== undefined ? { backend: d.backend } : {}),
    ...(d.connect !== undefined ? { connect: d.connect } : {}),
    ...(d.libvirt?.snippets !== undefined && d.libvirt.snippets.length > 0 ? { libvirt: { snippets: d.libvirt.snippets } } : {}),
  };
}
