/**
 * The built-in image catalog: short names (`debian:12`, `ubuntu:noble`, `alpine`) for official
 * cloud images. Each entry points at the publisher's own URL. Publishers replace the files
 * behind these "latest"/"current" URLs regularly, so no hex digest is pinned here (one copied
 * from memory would be an invented one): every entry names the publisher's checksum file next
 * to the image instead, and the download is verified against it (docs/images.md).
 */
export interface CatalogEntry {
  /** canonical name: the store registers the image under this name */
  name: string;
  /** other names for the same entry (`debian:bookworm`, `ubuntu:24.04`) */
  aliases: readonly string[];
  url: string;
  /** pinned "sha256:<hex>" / "sha512:<hex>", or null when the sidecar file supplies it */
  checksum: string | null;
  /** the publisher's checksum file (SHA512SUMS, SHA256SUMS, <file>.sha512, BSD CHECKSUM) */
  checksumUrl: string | null;
  format: 'qcow2' | 'raw';
  /** the login user the image's cloud-init convention creates */
  user: string;
  /** OS family, for defaults that depend on it (login shell) */
  os: 'debian' | 'ubuntu' | 'alpine' | 'fedora';
  /** `tend image build <name>` can build it locally when there is no network */
  buildable: boolean;
}

const DEBIAN = 'https://cloud.debian.org/images/cloud';
const UBUNTU = 'https://cloud-images.ubuntu.com';
const ALPINE = 'https://dl-cdn.alpinelinux.org/alpine/v3.20/releases/cloud';
const FEDORA = 'https://download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images';

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: 'debian:12',
    aliases: ['debian:bookworm', 'debian'],
    url: `${DEBIAN}/bookworm/latest/debian-12-genericcloud-amd64.qcow2`,
    checksum: null,
    checksumUrl: `${DEBIAN}/bookworm/latest/SHA512SUMS`,
    format: 'qcow2',
    user: 'debian',
    os: 'debian',
    buildable: true,
  },
  {
    name: 'debian:13',
    aliases: ['debian:trixie'],
    url: `${DEBIAN}/trixie/latest/debian-13-genericcloud-amd64.qcow2`,
    checksum: null,
    checksumUrl: `${DEBIAN}/trixie/latest/SHA512SUMS`,
    format: 'qcow2',
    user: 'debian',
    os: 'debian',
    buildable: false,
  },
  {
    name: 'ubuntu:noble',
    aliases: ['ubuntu:24.04', 'ubuntu'],
    url: `${UBUNTU}/noble/current/noble-server-cloudimg-amd64.img`,
    checksum: null,
    checksumUrl: `${UBUNTU}/noble/current/SHA256SUMS`,
    format: 'qcow2',
    user: 'ubuntu',
    os: 'ubuntu',
    buildable: false,
  },
  {
    name: 'ubuntu:jammy',
    aliases: ['ubuntu:22.04'],
    url: `${UBUNTU}/jammy/current/jammy-server-cloudimg-amd64.img`,
    checksum: null,
    checksumUrl: `${UBUNTU}/jammy/current/SHA256SUMS`,
    format: 'qcow2',
    user: 'ubuntu',
    os: 'ubuntu',
    buildable: false,
  },
  {
    name: 'alpine:3.20',
    aliases: ['alpine'],
    url: `${ALPINE}/nocloud_alpine-3.20.3-x86_64-bios-cloudinit-r0.qcow2`,
    checksum: null,
    checksumUrl: `${ALPINE}/nocloud_alpine-3.20.3-x86_64-bios-cloudinit-r0.qcow2.sha512`,
    format: 'qcow2',
    user: 'alpine',
    os: 'alpine',
    buildable: false,
  },
  {
    name: 'fedora:41',
    aliases: ['fedora'],
    url: `${FEDORA}/Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2`,
    checksum: null,
    checksumUrl: `${FEDORA}/Fedora-Cloud-41-1.4-x86_64-CHECKSUM`,
    format: 'qcow2',
    user: 'fedora',
    os: 'fedora',
    buildable: false,
  },
];

/** The entry for a name or alias (case-insensitive), or undefined. */
export function catalogEntry(name: string): CatalogEntry | undefined {
  const n = name.trim().toLowerCase();
  return CATALOG.find((e) => e.name === n || e.aliases.includes(n));
}

/** Every name and alias, for "did you mean" suggestions and `tend image ls --catalog`. */
export function catalogNames(): string[] {
  return CATALOG.flatMap((e) => [e.name, ...e.aliases]);
}

/** Default login user by OS family hint (holos `image_os`). */
export const OS_USERS: Readonly<Record<string, string>> = {
  debian: 'debian',
  ubuntu: 'ubuntu',
  fedora: 'fedora',
  alpine: 'alpine',
  centos: 'cloud-user',
  rocky: 'rocky',
  almalinux: 'almalinux',
  arch: 'arch',
};
