/**
 * The canonical model: what every dialect loader produces, and the only shape that
 * anything after loading sees. JSON Schema 2020-12; the TypeScript types below are derived
 * from these same schemas (json-schema-to-ts), never written twice.
 *
 * Units are fixed here: memory in MiB, disk and volume sizes in GiB, durations in seconds.
 * Paths are absolute (loaders resolve them relative to the file and expand `~`).
 * Defaults are applied in one place: `applyDefaults` in `schemas/defaults.ts`.
 */
import type { FromSchema } from 'json-schema-to-ts';
import {
  CPU_MODEL_PATTERN,
  HOSTNAME_PATTERN,
  IFNAME_PATTERN,
  LINUX_USER_PATTERN,
  MACHINE_PATTERN,
  NAME_PATTERN,
  OS_PATTERN,
  SSH_USER_PATTERN,
} from './names.js';

/** Upper bounds of the model's numbers (issue 13 §12): no file may ask for more. */
/** 16 TiB of memory, in MiB: more than any host addresses today. */
export const MAX_MEMORY_MIB = 16 * 1024 * 1024;
/** 64 TiB for a disk or a volume, in GiB. */
export const MAX_SIZE_GIB = 64 * 1024;
/** 7 days for any duration, in seconds (timers in Node.js end at 24.8 days). */
export const MAX_SECONDS = 7 * 24 * 3600;

export const imageSourceSchema = {
  $id: 'tend:image-source',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'ref'],
  properties: {
    /**
     * path: a local file; url: downloaded; catalog: a built-in name such as debian:12; bootc: a
     * bootc container image, made into a disk by `bootc install to-disk` (docs/vms-yml.md)
     */
    kind: { enum: ['path', 'url', 'catalog', 'bootc'] },
    /** absolute path, URL, catalog name, or container image (as podman names it) */
    ref: { type: 'string', minLength: 1 },
    /** disk format of the image file; null = detect (qemu-img info) */
    format: { enum: ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx', null] },
    /** "sha256:<hex>" or "sha512:<hex>"; null = none declared (sidecar or catalog may supply one) */
    checksum: { type: ['string', 'null'], pattern: '^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$' },
    /** OS family hint (holos image_os): picks the default SSH user */
    os: { type: ['string', 'null'], pattern: OS_PATTERN },
    /**
     * A url image whose checksum of this type is published next to it (ov's `checksum: {type:
     * sha256}` without a value): read from `<url>.SHA256` (and the other usual sidecar names);
     * the download fails when there is none. Absent = sidecars are optional.
     */
    sidecar: { enum: ['sha256', 'sha512'] },
    /** how a bootc image becomes a disk (kind bootc only) */
    bootc: {
      type: 'object',
      additionalProperties: false,
      required: ['transport', 'rootfs', 'rootSize', 'kernelArgs'],
      properties: {
        /** where podman reads the container image from */
        transport: { enum: ['registry', 'containers-storage', 'oci', 'oci-archive'] },
        /** root filesystem type; null = the image's default */
        rootfs: { enum: ['ext4', 'xfs', 'btrfs', null] },
        /** GiB cap of the root partition; null = the whole disk */
        rootSize: { type: ['integer', 'null'], minimum: 1, maximum: MAX_SIZE_GIB },
        kernelArgs: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

export const portSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['hostAddress', 'hostPort', 'guestPort', 'protocol'],
  properties: {
    hostAddress: { type: 'string' },
    /** null = allocate a free port, persisted so it stays stable */
    hostPort: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
    guestPort: { type: 'integer', minimum: 1, maximum: 65535 },
    protocol: { enum: ['tcp', 'udp'] },
  },
} as const;

export const writeFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['path', 'content'],
  properties: {
    path: { type: 'string' },
    content: { type: 'string' },
    permissions: { type: ['string', 'null'] },
    owner: { type: ['string', 'null'] },
  },
} as const;

export const cloudInitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['hostname', 'user', 'sshAuthorizedKeys', 'userData', 'packages', 'writeFiles', 'runcmd', 'bootcmd'],
  properties: {
    /** null = the VM's name */
    hostname: { type: ['string', 'null'], pattern: HOSTNAME_PATTERN },
    /** the login user cloud-init creates (passwordless sudo); null = the SSH user */
    user: { type: ['string', 'null'], pattern: LINUX_USER_PATTERN },
    /** public keys (contents, not paths) */
    sshAuthorizedKeys: { type: 'array', items: { type: 'string' } },
    /** absolute path of a raw user-data file given as is; when set, the fields below are not used */
    userData: { type: ['string', 'null'] },
    packages: { type: 'array', items: { type: 'string' } },
    writeFiles: { type: 'array', items: writeFileSchema },
    runcmd: { type: 'array', items: { type: 'string' } },
    bootcmd: { type: 'array', items: { type: 'string' } },
    /**
     * true: `user` is an account the image already has (ov's base_user): cloud-init keeps the
     * image's default user and only adds the SSH keys to it, no useradd, no sudoers change.
     */
    adoptUser: { type: 'boolean' },
    /** cloud-init's timezone module (e.g. UTC) */
    timezone: { type: 'string', minLength: 1 },
    /** a NoCloud network-config document (version 1 or 2), written to the seed as is */
    networkConfig: { type: 'object' },
  },
} as const;

export const sshSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['user', 'privateKey', 'port'],
  properties: {
    /** null = from the image's convention, then a default (docs/ssh.md) */
    user: { type: ['string', 'null'], pattern: SSH_USER_PATTERN },
    /** absolute path of a private key; null = tend generates one per VM */
    privateKey: { type: ['string', 'null'] },
    /** the guest's sshd port */
    port: { type: 'integer', minimum: 1, maximum: 65535 },
  },
} as const;

export const provisionStepSchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'inline'],
      properties: { kind: { const: 'shell' }, inline: { type: 'array', items: { type: 'string' }, minItems: 1 } },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'script'],
      properties: { kind: { const: 'shell' }, script: { type: 'string' } },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'source', 'destination'],
      properties: { kind: { const: 'file' }, source: { type: 'string' }, destination: { type: 'string' } },
    },
  ],
} as const;

export const volumeMountSchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'name', 'target', 'readOnly'],
      properties: {
        kind: { const: 'named' },
        name: { type: 'string' },
        target: { type: 'string' },
        readOnly: { type: 'boolean' },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'source', 'target', 'readOnly'],
      properties: {
        kind: { const: 'host' },
        /** absolute host path */
        source: { type: 'string' },
        target: { type: 'string' },
        readOnly: { type: 'boolean' },
      },
    },
  ],
} as const;

export const healthcheckSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['test', 'interval', 'retries', 'startPeriod', 'timeout'],
  properties: {
    /** argv; ["sh", "-c", "..."] for the string form */
    test: { type: 'array', items: { type: 'string' }, minItems: 1 },
    interval: { type: 'number', exclusiveMinimum: 0, maximum: MAX_SECONDS },
    retries: { type: 'integer', minimum: 1, maximum: 1000 },
    startPeriod: { type: 'number', minimum: 0, maximum: MAX_SECONDS },
    timeout: { type: 'number', exclusiveMinimum: 0, maximum: MAX_SECONDS },
  },
} as const;

export const vmSpecSchema = {
  $id: 'tend:vm-spec',
  type: 'object',
  additionalProperties: false,
  required: [
    'name',
    'service',
    'image',
    'cpus',
    'memory',
    'disk',
    'machine',
    'cpuModel',
    'firmware',
    'accel',
    'network',
    'ports',
    'cloudInit',
    'ssh',
    'provision',
    'volumes',
    'devices',
    'extraArgs',
    'video',
    'graphics',
    'dependsOn',
    'healthcheck',
    'restart',
    'runState',
    'disposable',
    'stopGracePeriod',
    'timeouts',
  ],
  properties: {
    /** instance name: a file name and a host name */
    name: { type: 'string', pattern: NAME_PATTERN },
    /** compose service this instance belongs to (replicas share it); the VM name otherwise */
    service: { type: 'string' },
    image: imageSourceSchema,
    cpus: { type: 'integer', minimum: 1, maximum: 512 },
    /** MiB (at most 16 TiB: what a host can address) */
    memory: { type: 'integer', minimum: 64, maximum: MAX_MEMORY_MIB },
    /** GiB; null = the base image's own size */
    disk: { type: ['integer', 'null'], minimum: 1, maximum: MAX_SIZE_GIB },
    machine: { type: 'string', pattern: MACHINE_PATTERN },
    /** null = the backend picks (host under KVM, max under TCG) */
    cpuModel: { type: ['string', 'null'], pattern: CPU_MODEL_PATTERN },
    firmware: { enum: ['bios', 'uefi', 'uefi-secure'] },
    accel: { enum: ['auto', 'kvm', 'tcg'] },
    network: {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'bridge'],
      properties: {
        mode: { enum: ['user', 'tap', 'none'] },
        bridge: { type: ['string', 'null'], pattern: IFNAME_PATTERN },
      },
    },
    ports: { type: 'array', items: portSchema },
    cloudInit: { oneOf: [cloudInitSchema, { type: 'null' }] },
    ssh: sshSchema,
    provision: { type: 'array', items: provisionStepSchema },
    volumes: { type: 'array', items: volumeMountSchema },
    devices: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['pci', 'romFile'],
        properties: {
          pci: { type: 'string', pattern: '^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]$' },
          romFile: { type: ['string', 'null'] },
        },
      },
    },
    /** extra QEMU arguments, passed as argv, never through a shell */
    extraArgs: { type: 'array', items: { type: 'string' } },
    /**
     * The display adapter (design §4). Every VM has one unless this is `none`: stock images'
     * GRUB (its graphical terminal) waits forever without one. vga = the standard VGA (QEMU's
     * `-vga std`, the default), virtio = virtio-vga, qxl = qxl-vga, cirrus = cirrus-vga,
     * none = no display device. docs/qemu.md.
     */
    video: { enum: ['none', 'vga', 'virtio', 'qxl', 'cirrus'] },
    /**
     * A remote display of the video device, for a person to look at the guest's screen: VNC or
     * SPICE, always on 127.0.0.1, at a host port tend picks free and keeps; none = off.
     */
    graphics: { enum: ['none', 'vnc', 'spice'] },
    /** VM names (replicated services are expanded to their instances) */
    dependsOn: { type: 'array', items: { type: 'string' } },
    healthcheck: { oneOf: [healthcheckSchema, { type: 'null' }] },
    restart: { enum: ['always', 'on-failure', 'no'] },
    /** desired run state */
    runState: { enum: ['running', 'stopped'] },
    /** true: image changes and disk shrinks recreate the disk without --recreate */
    disposable: { type: 'boolean' },
    /** seconds between ACPI powerdown and SIGTERM */
    stopGracePeriod: { type: 'number', minimum: 0, maximum: MAX_SECONDS },
    /**
     * How `tend down`, `tend stop` and `tend watch` (a stop by intent) stop the VM: poweroff =
     * ACPI powerdown (then SIGTERM, SIGKILL); save = its RAM and device state are saved to a file
     * and the next start restores it instead of booting (docs/warm.md). Absent = poweroff.
     */
    stopMode: { enum: ['poweroff', 'save'] },
    /**
     * Warm clones (issue 15 §2, docs/warm.md): once Ready, the VM's post-boot state is kept as a
     * template (frozen disk + memory) keyed by what defines it, and a new VM with the same key
     * starts from it (a new overlay on the frozen disk, the memory restored) with its identity
     * made its own, instead of booting. Absent = false.
     */
    warm: { type: 'boolean' },
    /**
     * Time limit of each readiness stage, in seconds (a command's flag overrides it); null = the
     * environment, else the built-in default (src/timeouts.ts).
     */
    timeouts: {
      type: 'object',
      additionalProperties: false,
      required: ['start', 'ssh', 'login', 'cloudInit'],
      properties: {
        /** QEMU started until QMP reports it running */
        start: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: MAX_SECONDS },
        /** until the guest's sshd answers with a banner */
        ssh: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: MAX_SECONDS },
        /** banner seen until a login works */
        login: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: MAX_SECONDS },
        /** login works until `cloud-init status --wait` succeeds */
        cloudInit: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: MAX_SECONDS },
      },
    },
    /**
     * Identity of the content behind paths the spec names, set at load time so that a changed
     * file (same path) is a change the plan sees: "sha256:<hex>" of a raw user-data file, and
     * "<size>:<mtime>" of a local image file. Absent when the VM names no such file.
     */
    userDataDigest: { type: 'string' },
    imageDigest: { type: 'string' },
    /**
     * Which backend runs the VM (docs/libvirt.md): qemu = tend's own QEMU processes; libvirt = a
     * libvirt domain; auto = libvirt when its daemon answers, else qemu. Absent = the command's
     * --backend, else $TEND_BACKEND, else qemu (the default of VMFile.kdl and compose files).
     */
    backend: { enum: ['qemu', 'libvirt', 'auto'] },
    /**
     * libvirt connection URI (qemu:///session, qemu:///system, qemu+ssh://user@host/system).
     * Absent = --connect, else $TEND_LIBVIRT_URI, else qemu:///system as root, qemu:///session otherwise.
     */
    connect: { type: 'string', minLength: 1 },
    /** libvirt-only settings (ignored by the QEMU backend) */
    libvirt: {
      type: 'object',
      additionalProperties: false,
      required: ['snippets'],
      properties: {
        /** raw XML elements merged into the domain: device elements into <devices>, others into <domain> */
        snippets: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

export const projectSchema = {
  $id: 'tend:project',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'dir', 'files', 'vms', 'volumes'],
  properties: {
    /** project name: the `name` key, else the directory's base name (normalised) */
    name: { type: 'string', pattern: NAME_PATTERN },
    /** absolute directory of the (first) project file */
    dir: { type: 'string' },
    /** absolute paths of the files it was loaded from */
    files: { type: 'array', items: { type: 'string' } },
    vms: { type: 'array', items: vmSpecSchema },
    /** named volumes: name -> size in GiB */
    volumes: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['size'],
        properties: { size: { type: 'integer', minimum: 1, maximum: MAX_SIZE_GIB } },
      },
    },
  },
} as const;

export type ImageSource = FromSchema<typeof imageSourceSchema>;
export type PortSpec = FromSchema<typeof portSchema>;
export type WriteFile = FromSchema<typeof writeFileSchema>;
export type CloudInitSpec = FromSchema<typeof cloudInitSchema>;
export type SshSpec = FromSchema<typeof sshSchema>;
export type ProvisionStep = FromSchema<typeof provisionStepSchema>;
export type VolumeMount = FromSchema<typeof volumeMountSchema>;
export type HealthcheckSpec = FromSchema<typeof healthcheckSchema>;
export type VmSpec = FromSchema<typeof vmSpecSchema>;
export type Project = FromSchema<typeof projectSchema>;

/** Where a VM (or one of its fields) was declared: for error messages and `plan` output. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}
