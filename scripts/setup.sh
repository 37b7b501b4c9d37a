#!/usr/bin/env bash
# First command of the README: installs what tend and its tests need on Debian 12 (as root),
# builds tend, puts `tend` on PATH, builds the debian:12 guest image from Debian packages, and
# brings examples/quickstart up to SSH-ready. The README's second command, `npm test`, then runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/deps.sh
. scripts/deps.sh

# first, before anything is installed: a Node older than 20.3 (Debian 12's own is 18) cannot run tend
tend_check_node

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh installs packages and builds a disk image: run it as root (sudo bash scripts/setup.sh)" >&2
  exit 1
fi

say "installing system packages: ${TEND_APT_PACKAGES[*]} ${TEND_APT_TEST_PACKAGES[*]}"
tend_install_deps --with-tests

say "installing npm dependencies"
npm ci --no-audit --no-fund

say "building tend"
npm run build

say "putting tend on PATH (npm link)"
npm link --no-audit --no-fund
command -v tend >/dev/null || { echo "npm link did not put tend on PATH (npm prefix: $(npm prefix -g))" >&2; exit 1; }

say "building the debian:12 guest image (first time: a few minutes; then cached)"
tend image build debian:12

say "bringing up examples/quickstart (boots a VM under QEMU; ~1-2 minutes without KVM)"
cd examples/quickstart
tend up
tend ps
say "done: cd examples/quickstart && tend exec hello -- hostname   (prints hello); tend down to stop it"
