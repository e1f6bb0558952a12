#!/usr/bin/env bash
# A Buildbot master and two workers on loopback running fci's per-change pipeline
# (examples/buildbot/master.cfg): the master polls dist-git with `fci watch`, each change runs
# build → test → compose → integrate → image → smoke → report --promote on one worker, and
# the workers share the pipeline state (FCI_STATE) as they would on an NFS volume.
#
#   start.sh prepare   users, group and the shared state directory (no daemons)
#   start.sh start     prepare, then create (once) and start the master and both workers
#   start.sh stop      stop the workers and the master, waiting until they are gone
#   start.sh clean     stop, then remove the master's and the workers' directories (not the state)
#
# Settings (environment):
#   FCI_BB_DIR        where the master's and workers' directories go (required)
#   FCI_STATE         the shared pipeline state (required); made group-owned by FCI_BB_GROUP, 2770
#   FCI_CONFIG        the pipeline's fci.yaml (required for start)
#   FCI_BIN           fci (default: `command -v fci`)
#   FCI_LOOKASIDE     --lookaside for fci build (required for start)
#   FCI_INTEGRATION   --tests for fci integrate (default: integration/ beside this script)
#   FCI_GATING        the gating policy fci report --promote decides on (default: gating.yaml here)
#   FCI_IMAGE_INTERVAL  fci image --interval (default 1d)
#   FCI_SMOKE_CHECK   fci smoke --check (default: true)
#   FCI_WATCH_INTERVAL  seconds between the master's polls (default 10)
#   BB_WWW_PORT, BB_WORKER_PORT  the web/REST port and the workers' port (default 8010, 9989)
#   BUILDBOT_VENV     the venv holding buildbot and buildbot-worker (default /opt/fci/buildbot)
#
# As root, each worker runs as its own user (fci-worker1, fci-worker2, made if missing) in the
# group FCI_BB_GROUP (default fci-workers), which owns the state directory; the workers and the
# master's watch write it with umask 002 so every worker can go on with a run another started.
# Not as root, everything runs as the caller.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${BUILDBOT_VENV:-/opt/fci/buildbot}
group=${FCI_BB_GROUP:-fci-workers}
workers=(fci-worker1 fci-worker2)
: "${FCI_BB_DIR:?set FCI_BB_DIR: where the master and workers live}"
: "${FCI_STATE:?set FCI_STATE: the shared pipeline state directory}"
bbdir=$FCI_BB_DIR
root=false; [ "$(id -u)" -eq 0 ] && root=true

prepare() {
  mkdir -p "$bbdir"
  if $root; then
    getent group "$group" >/dev/null || groupadd --system "$group"
    for u in "${workers[@]}"; do
      # A home of its own (tmt and ansible write there); no login shell.
      id -u "$u" >/dev/null 2>&1 ||
        useradd --system --gid "$group" --create-home --home-dir "/var/lib/$u" \
          --shell /usr/sbin/nologin "$u"
    done
  fi
  # Shared by the workers' group, never by every user (fci refuses a world-writable state);
  # setgid so what anyone makes inside stays the group's.
  mkdir -p "$FCI_STATE"
  if $root; then
    chgrp "$group" "$FCI_STATE"
    chmod 2770 "$FCI_STATE"
  else
    chmod 0770 "$FCI_STATE"
  fi
}

# Runs "$@" as worker $1's user (as root), or as the caller.
as_worker() {
  local u=$1; shift
  if $root; then
    setpriv --reuid="$u" --regid="$group" --init-groups \
      env HOME="/var/lib/$u" USER="$u" LOGNAME="$u" "$@"
  else
    "$@"
  fi
}

start() {
  : "${FCI_CONFIG:?set FCI_CONFIG: the pipeline fci.yaml}"
  : "${FCI_LOOKASIDE:?set FCI_LOOKASIDE: fci build --lookaside}"
  local fci=${FCI_BIN:-$(command -v fci)}
  prepare
  local m="$bbdir/master"
  if [ ! -f "$m/buildbot.tac" ]; then
    "$venv/bin/buildbot" create-master -q -r "$m"
  fi
  cp "$here/master.cfg" "$m/master.cfg"
  # The master reads its settings from the environment it starts with.
  export FCI_BIN="$fci" FCI_CONFIG FCI_LOOKASIDE FCI_STATE
  export FCI_INTEGRATION=${FCI_INTEGRATION:-$here/integration}
  export FCI_GATING=${FCI_GATING:-$here/gating.yaml}
  export FCI_IMAGE_INTERVAL=${FCI_IMAGE_INTERVAL:-1d}
  export FCI_SMOKE_CHECK=${FCI_SMOKE_CHECK:-true}
  export FCI_WATCH_INTERVAL=${FCI_WATCH_INTERVAL:-10}
  export BB_WWW_PORT=${BB_WWW_PORT:-8010} BB_WORKER_PORT=${BB_WORKER_PORT:-9989}
  export FCI_MASTER_WORKSPACE="$m/workspace"
  export FCI_BB_WORKERS="${workers[*]}"
  "$venv/bin/buildbot" checkconfig "$m" >/dev/null
  "$venv/bin/buildbot" start "$m"
  local i=0 u w
  for u in "${workers[@]}"; do
    i=$((i + 1))
    w="$bbdir/worker$i"
    mkdir -p "$w"
    $root && chown "$u:$group" "$w" && chmod 0750 "$w"
    if [ ! -f "$w/buildbot.tac" ]; then
      # umask 002: the state this worker writes (records, refs, objects) stays writable by
      # the other worker, which may go on with the run.
      as_worker "$u" "$venv/bin/buildbot-worker" create-worker -q -r --umask=0o002 \
        "$w" "127.0.0.1:$BB_WORKER_PORT" "$u" "pass-$u"
    fi
    # Each worker has its own workspace, and the state everyone shares.
    as_worker "$u" env FCI_WORKSPACE="$w/workspace" FCI_STATE="$FCI_STATE" \
      PATH="$(dirname "$fci"):$PATH" "$venv/bin/buildbot-worker" start "$w"
  done
}

stop() {
  local i=0 u w
  for u in "${workers[@]}"; do
    i=$((i + 1))
    w="$bbdir/worker$i"
    if [ -f "$w/twistd.pid" ]; then
      as_worker "$u" "$venv/bin/buildbot-worker" stop "$w" || true
    fi
  done
  if [ -f "$bbdir/master/twistd.pid" ]; then
    "$venv/bin/buildbot" stop "$bbdir/master" || true
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  start) start ;;
  stop) stop ;;
  clean) stop; rm -rf "$bbdir/master" "$bbdir"/worker* ;;
  *) echo "usage: $0 prepare|start|stop|clean" >&2; exit 2 ;;
esac
