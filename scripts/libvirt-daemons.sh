# shellcheck shell=bash
# Start libvirt's daemons by hand on a host without systemd (CI), and stop exactly what was
# started. Source this file, then `tend_libvirt_start` (as root) and, at the end,
# `tend_libvirt_stop`. A daemon already answering is left alone (and never stopped).
#
# Nothing here may touch the host's network: libvirt's `default` network (a NAT bridge) is
# un-autostarted before the daemon starts, and tend never defines a libvirt network.

TEND_LIBVIRT_STARTED_PIDS=()
TEND_LIBVIRT_QEMU_CONF_BACKUP=""
TEND_LIBVIRT_QEMU_CONF=/etc/libvirt/qemu.conf

# libvirt probes QEMU's capabilities as root but later checks /dev/kvm as its QEMU user: in a
# container whose /dev/kvm belongs to a group that user is not in, every lookup finds the cache
# stale and re-probes (a `virsh define` then takes minutes). QEMU then runs as root (as tend's
# domains on qemu:///system do anyway, docs/libvirt.md); the original file is restored at stop.
tend_libvirt_qemu_user() {
  [ -e /dev/kvm ] || return 0
  local u
  u="$(sed -n 's/^[[:space:]]*user[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$TEND_LIBVIRT_QEMU_CONF" | tail -n1)"
  u="${u:-libvirt-qemu}"
  [ "$u" = root ] && return 0
  setpriv --reuid="$u" --regid="$u" --init-groups test -r /dev/kvm -a -w /dev/kvm 2>/dev/null && return 0
  TEND_LIBVIRT_QEMU_CONF_BACKUP="$1/qemu.conf.orig"
  cp -p "$TEND_LIBVIRT_QEMU_CONF" "$TEND_LIBVIRT_QEMU_CONF_BACKUP"
  printf '\n# added by tend scripts/libvirt-daemons.sh (restored at stop): /dev/kvm is not accessible to %s\nuser = "root"\ngroup = "root"\n' "$u" >>"$TEND_LIBVIRT_QEMU_CONF"
  echo "libvirt: /dev/kvm is not accessible to $u: QEMU runs as root for this run"
}

tend_libvirt_start() {
  local uri="qemu:///system"
  if virsh -c "$uri" version >/dev/null 2>&1; then
    echo "libvirt: a daemon already answers on $uri (left alone)"
    return 0
  fi
  # never autostart the default NAT network (it would create virbr0 and firewall rules)
  rm -f /etc/libvirt/qemu/networks/autostart/default.xml
  local run="${TMPDIR:-/tmp}/tend-libvirt.$$"
  mkdir -p "$run"
  tend_libvirt_qemu_user "$run"
  if ! pgrep -x -r S,R,D virtlogd >/dev/null 2>&1; then
    virtlogd -d -p "$run/virtlogd.pid" || return 1
    TEND_LIBVIRT_STARTED_PIDS+=("$(tend_libvirt_wait_pidfile "$run/virtlogd.pid")")
  fi
  libvirtd -d -p "$run/libvirtd.pid" || return 1
  TEND_LIBVIRT_STARTED_PIDS+=("$(tend_libvirt_wait_pidfile "$run/libvirtd.pid")")
  local i
  for i in $(seq 1 60); do
    if virsh -c "$uri" version >/dev/null 2>&1; then
      echo "libvirt: started (pids ${TEND_LIBVIRT_STARTED_PIDS[*]}); $(virsh -c "$uri" version | grep -i 'running hypervisor' || true)"
      return 0
    fi
    sleep 0.5
  done
  echo "libvirt: daemon did not answer on $uri within 30 s" >&2
  return 1
}

tend_libvirt_wait_pidfile() {
  local f="$1" i
  for i in $(seq 1 50); do
    [ -s "$f" ] && { tr -d '\n' <"$f"; return 0; }
    sleep 0.1
  done
  echo "libvirt: no pid in $f" >&2
  return 1
}

# Stop the daemons tend_libvirt_start started (newest first), by pid; nothing else.
tend_libvirt_stop() {
  local i pid
  for ((i = ${#TEND_LIBVIRT_STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    pid="${TEND_LIBVIRT_STARTED_PIDS[$i]}"
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  TEND_LIBVIRT_STARTED_PIDS=()
  if [ -n "$TEND_LIBVIRT_QEMU_CONF_BACKUP" ] && [ -f "$TEND_LIBVIRT_QEMU_CONF_BACKUP" ]; then
    cp -p "$TEND_LIBVIRT_QEMU_CONF_BACKUP" "$TEND_LIBVIRT_QEMU_CONF"
    TEND_LIBVIRT_QEMU_CONF_BACKUP=""
  fi
}
