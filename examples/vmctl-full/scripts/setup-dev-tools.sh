#!/bin/sh
# Run by the third provisioner of "full-example".
set -eu
mkdir -p "$HOME/src"
git --version
curl --version | head -n 1
echo "dev tools ready"
