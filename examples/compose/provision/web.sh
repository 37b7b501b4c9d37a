#!/bin/sh
# Runs on each web VM after it is ready (re-run only when this file changes).
set -eu
systemctl reload nginx
