/**
 * The built-in image catalog: short names (`debian:12`, `ubuntu:noble`, `alpine`) for official
 * cloud images. Each entry points at the publisher's own URL. Entries on a "latest"/"current" URL
 * (the publisher replaces the file regularly) name the publisher's checksum file next to the
 * image, and the download is verified against it (docs/images.md). Entries on a versioned URL
 * pin the digest the distribution published for that file; these digests are the ones Lima pins
 * in its templates (lima-vm/lima, templates/_images/*.yaml at commit 183a60d721bf), which copy
 * them from each distribution's SHA256SUMS / CHECKSUM / .sha512 files: tend has no network at
 * build time to read those files itself, and a digest typed from memory would be invented.
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
  os: 'debian' | 'ubuntu' | 'alpine' | 'fedora' | 'arch' | 'rocky' | 'almalinux';
  /** firmware the image boots with; absent = BIOS (and UEFI) both work */
  firmware?: 'uefi';
  /** `tend image build <name>` can build it locally when there is no network */
  buildable: boolean;
}

const DEBIAN = 'https://cloud.debian.org/images/cloud';
const UBUNTU = 'https://cloud-images.ubuntu.com';
const ALPINE = 'https://dl-cdn.alpinelinux.org/alpine/v3.20/releases/cloud';
const FEDORA = 'https://download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images';
const FEDORA_REL = 'https://download.fedoraproject.org/pub/fedora/linux/releases';
const ALPINE_REL = 'https://dl-cdn.alpinelinux.org/alpine';
const ARCH = 'https://geo.mirror.pkgbuild.com/images';
const ROCKY = 'https://dl.rockylinux.org/pub/rocky';
const ALMA = 'https://repo.almalinux.org/almalinux';

/** A versioned image with the digest its publisher published (via Lima's templates, see above). */
function pinned(
  name: string,
  aliases: string[],
  url: string,
  checksum: string,
  user: string,
  os: CatalogEntry['os'],
  firmware?: 'uefi',
): CatalogEntry {
  return {
    name,
    aliases,
    url,
    checksum,
    checksumUrl: null,
    format: 'qcow2',
    user,
    os,
    buildable: false,
    ...(firmware ? { firmware } : {}),
  };
}

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
    aliases: [],
    url: `${FEDORA}/Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2`,
    checksum: null,
    checksumUrl: `${FEDORA}/Fedora-Cloud-41-1.4-x86_64-CHECKSUM`,
    format: 'qcow2',
    user: 'fedora',
    os: 'fedora',
    buildable: false,
  },
  // Fedora current (templates/_images/fedora-44.yaml, fedora-43.yaml)
  pinned(
    'fedora:44',
    ['fedora'],
    `${FEDORA_REL}/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2`,
    'sha256:28680fe5b371a5a82ebf43a31926e086a168e59949d03969c5093e7071f90b7f',
    'fedora',
    'fedora',
  ),
  pinned(
    'fedora:43',
    [],
    `${FEDORA_REL}/43/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2`,
    'sha256:846574c8a97cd2d8dc1f231062d73107cc85cbbbda56335e264a46e3a6c8ab2f',
    'fedora',
    'fedora',
  ),
  // Alpine's NoCloud images of 3.21+ are the UEFI builds (templates/_images/alpine-3.2x.yaml)
  pinned(
    'alpine:3.23',
    [],
    `${ALPINE_REL}/v3.23/releases/cloud/nocloud_alpine-3.23.4-x86_64-uefi-cloudinit-r0.qcow2`,
    'sha512:849196e26640b33fb1f106d46cebdf341c715f7f49363564eacece8097464b6af7041618e94c4eb1a006394663252a86c0fb3158fee5d0ffb094899730679a71',
    'alpine',
    'alpine',
    'uefi',
  ),
  pinned(
    'alpine:3.22',
    [],
    `${ALPINE_REL}/v3.22/releases/cloud/nocloud_alpine-3.22.4-x86_64-uefi-cloudinit-r0.qcow2`,
    'sha512:1b8743fccfd92d8b690e5a75972bebe5d6826b2ea94bc7c71ede3a2a39a5535cbb4e49a6a3f42852d1e05d63076c6f1fbc29ddbb63d766101eaa9dadcaebbb1f',
    'alpine',
    'alpine',
    'uefi',
  ),
  pinned(
    'alpine:3.21',
    [],
    `${ALPINE_REL}/v3.21/releases/cloud/nocloud_alpine-3.21.7-x86_64-uefi-cloudinit-r0.qcow2`,
    'sha512:779afcc0bfdd4074ca620bb67c2f70f3d6cad4cdaf4fd91a9fd8a127feb159d9407be18cd8f778ed1adf950799cd93b2692d49ad7ee2221ed6a52d8e895d4c37',
    'alpine',
    'alpine',
    'uefi',
  ),
  // templates/_images/archlinux.yaml
  pinned(
    'arch',
    ['archlinux', 'arch:latest'],
    `${ARCH}/v20260715.556894/Arch-Linux-x86_64-cloudimg-20260715.556894.qcow2`,
    'sha256:f419d4e29aebfc017ad4c9de330a3be0d7eefba710b269108b116aaca1122926',
    'arch',
    'arch',
  ),
  // templates/_images/rocky-10.yaml, rocky-9.yaml, almalinux-10.yaml, almalinux-9.yaml
  pinned(
    'rocky:10',
    ['rocky', 'rockylinux:10', 'rockylinux'],
    `${ROCKY}/10.2/images/x86_64/Rocky-10-GenericCloud-Base-10.2-20260525.0.x86_64.qcow2`,
    'sha256:9fc9e9ff16888bb68ac39b0392e25c9c92684d50c85f1cce6ab549363bbc4b48',
    'rocky',
    'rocky',
  ),
  pinned(
    'rocky:9',
    ['rockylinux:9'],
    `${ROCKY}/9.8/images/x86_64/Rocky-9-GenericCloud-Base-9.8-20260525.0.x86_64.qcow2`,
    'sha256:92c206cc6f790c61583247eefe87890f8828420662c17cacf247cec78ab4eec8',
    'rocky',
    'rocky',
  ),
  pinned(
    'almalinux:10',
    ['almalinux', 'alma:10', 'alma'],
    `${ALMA}/10.2/cloud/x86_64/images/AlmaLinux-10-GenericCloud-10.2-20260526.0.x86_64.qcow2`,
    'sha256:47f2218668dd4776be140dd92fa3bea700be1766e2c7d88bdfd6a4b50f477b4d',
    'almalinux',
    'almalinux',
  ),
  pinned(
    'almalinux:9',
    ['alma:9'],
    `${ALMA}/9.8/cloud/x86_64/images/AlmaLinux-9-GenericCloud-9.8-20260526.x86_64.qcow2`,
    'sha256:c397eed7023e92c841155831b1f47e26300e5bef0f0256c129322307c897a251',
    'almalinux',
    'almalinux',
  ),
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
