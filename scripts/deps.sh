# shellcheck shell=bash
# The system packages tend needs, shared by .ci/run and scripts/setup.sh so they never drift.
# Source this file, then call `tend_install_deps`. Debian 12, as root.

# Runtime: QEMU, qemu-img, and what scripts/build-debian-image.sh uses to build the guest image.
TEND_APT_PACKAGES=(
  qemu-system-x86 qemu-utils ovmf
  debootstrap grub-pc-bin parted dosfstools mtools e2fsprogs fdisk util-linux
  openssh-server openssh-client
  xz-utils zstd ca-certificates
  # the libvirt backend (docs/libvirt.md): libvirtd + virtlogd, virsh, and passt where libvirt
  # accepts it (libvirt >= 9.2; Debian 12's 9.0 does not, so user networking uses QEMU's slirp)
  libvirt-daemon-system libvirt-clients passt
)

# ---- TEST TOOLS: packages only the test suites need. Engineers: add yours here. ----
TEND_APT_TEST_PACKAGES=(
  cloud-image-utils   # cloud-localds: e2e seed ISOs when src/seed/iso9660.ts is absent
  procps              # ps, used by the fake cloud-init of test/integration/ssh-exec.test.ts
  openssh-sftp-server # /usr/lib/openssh/sftp-server: tend cp against the loopback sshd (test/integration/cli-exec.test.ts)
  genisoimage         # isoinfo: reads back the in-process seed ISO (test/unit/seed-iso.test.ts)
  libarchive-tools    # bsdtar: a second reader of the seed ISO
  zsh fish            # test/integration/cli-completion.test.ts: `tend completion zsh|fish` loaded and TAB-completed
  iproute2 dnsmasq-base isc-dhcp-client  # test/integration/tap-netns.test.ts: netns, bridge, DHCP
  # test/e2e/tap.test.ts needs iproute2 and dnsmasq-base (above) and qemu-bridge-helper, which
  # comes with qemu-system-x86 (its dependency qemu-system-common)
  python3-minimal     # test/e2e/tap.test.ts: an AF_PACKET sniffer on the bridge's ports (no tcpdump needed)
)
# ---- end of test tools ----

tend_install_deps() {
  local with_tests="${1:-}"
  local pkgs=("${TEND_APT_PACKAGES[@]}")
  # usage: tend_install_deps --with-tests | --runtime-only
  [ "$with_tests" = "--with-tests" ] && pkgs+=("${TEND_APT_TEST_PACKAGES[@]}")
  export DEBIAN_FRONTEND=noninteractive
  # Keep postinst scripts from starting services (the system sshd on :22): tests start their
  # own sshd on free loopback ports, so a running one would not matter, but none is needed.
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  apt-get update -q || rc=$?
  [ $rc -eq 0 ] && { apt-get install -y -q --no-install-recommends "${pkgs[@]}" || rc=$?; }
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

# Node >= 20.3 is required (package.json "engines"; Debian 12's own nodejs is 18). Called first by
# scripts/setup.sh and .ci/run, so a too-old Node fails in the first second, before any package is
# installed. The README says how to get a newer Node on Debian 12.
TEND_NODE_MIN="20.3"
tend_check_node() {
  local how="install Node.js >= ${TEND_NODE_MIN} first: on Debian 12 from NodeSource (https://github.com/nodesource/distributions) or the nodejs.org tarball (see README.md, Prerequisites)"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tend needs Node.js >= ${TEND_NODE_MIN} with npm on PATH; ${how}" >&2
    return 1
  fi
  local v major minor
  v="$(node --version 2>/dev/null || true)"
  if [[ ! "$v" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
    echo "tend needs Node.js >= ${TEND_NODE_MIN}: \`node --version\` printed \"${v}\"; ${how}" >&2
    return 1
  fi
  major="${BASH_REMATCH[1]}"
  minor="${BASH_REMATCH[2]}"
  if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 3 ]; }; then
    echo "tend needs Node.js >= ${TEND_NODE_MIN}, found ${v} ($(command -v node)); ${how}" >&2
    return 1
  fi
}
