# shellcheck shell=bash
# Starts and stops an isolated Docker engine: its own data root, exec root, socket, pidfile
# and bridge, so it never disturbs another engine on the machine. Sourced by tests/rig/rig and
# scripts/llmbox-up.
#
#   engine_start STATE_DIR BRIDGE CIDR POOL [DOCKERD_ARG...]
#                                             start (or reuse) the engine kept in STATE_DIR;
#                                             extra arguments go to dockerd (a TCP+TLS listener)
#   engine_stop STATE_DIR                     stop it by the pid in its pidfile (never by name)
#   engine_sock STATE_DIR                     print its socket path
#   engine_ping SOCK                          succeed when the engine on SOCK answers /_ping
#
# The socket and exec root live under /run/llmbox/<hash of STATE_DIR>/ because unix socket
# paths are limited to 108 bytes and the state directory may be deep.

engine_run_dir() {
  local dir
  dir=$(realpath -m "$1")
  printf '/run/llmbox/%s' "$(printf '%s' "$dir" | sha256sum | cut -c1-12)"
}

engine_sock() {
  printf '%s/docker.sock' "$(engine_run_dir "$1")"
}

engine_ping() {
  [[ -S "$1" ]] && [[ "$(curl -fsS --max-time 2 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" == OK ]]
}

engine_pid() {
  local pidfile=$1/dockerd.pid pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == dockerd ]] &&
    echo "$pid"
}

engine_ensure_bridge() {
  local bridge=$1 cidr=$2
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
  fi
  if ! ip -4 addr show dev "$bridge" | grep -q " ${cidr} "; then
    ip addr add "$cidr" dev "$bridge" 2>/dev/null || true
  fi
  ip link set "$bridge" up
}

engine_start() {
  local dir=$1 bridge=$2 cidr=$3 pool=$4
  shift 4
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  local run sock log
  run=$(engine_run_dir "$dir")
  sock=$run/docker.sock
  log=$dir/dockerd.log
  if engine_pid "$dir" >/dev/null && engine_ping "$sock"; then
    echo "engine: reusing the engine already running for $dir (socket $sock)"
    return 0
  fi
  if ! command -v dockerd >/dev/null; then
    echo "engine: dockerd is not installed (scripts/install-deps run installs docker.io)" >&2
    return 1
  fi
  if pid=$(engine_pid "$dir"); then
    echo "engine: dockerd $pid for $dir does not answer; stopping it first" >&2
    engine_stop "$dir"
  fi
  mkdir -p "$run" "$dir/data"
  rm -f "$sock"
  engine_ensure_bridge "$bridge" "$cidr"
  # Containers on a bridge need forwarding; dockerd turns it on as well, but only when it
  # manages iptables, so say it explicitly.
  sysctl -qw net.ipv4.ip_forward=1 >/dev/null 2>&1 || true
  # Its own (empty) daemon.json, so the machine's /etc/docker/daemon.json cannot clash with
  # these flags.
  [[ -f "$dir/daemon.json" ]] || echo '{}' >"$dir/daemon.json"
  echo "engine: starting dockerd for $dir (socket $sock, bridge $bridge $cidr, pool $pool)"
  setsid dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$dir/data" \
    --exec-root "$run/exec" \
    --host "unix://$sock" \
    --pidfile "$dir/dockerd.pid" \
    --bridge "$bridge" \
    --default-address-pool "base=$pool,size=24" \
    --log-level warn \
    "$@" \
    </dev/null >"$log" 2>&1 &
  local started=$! i
  for ((i = 0; i < 600; i++)); do
    if engine_ping "$sock"; then
      echo "engine: ready after $((i / 10)).$((i % 10)) s"
      return 0
    fi
    if ! kill -0 "$started" 2>/dev/null; then
      echo "engine: dockerd exited during start; the end of $log:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "engine: dockerd did not answer on $sock within 60 s; the end of $log:" >&2
  tail -n 20 "$log" >&2
  return 1
}

engine_stop() {
  local dir=$1 pid i
  dir=$(realpath -m "$dir")
  if ! pid=$(engine_pid "$dir"); then
    echo "engine: no engine running for $dir"
    return 0
  fi
  echo "engine: stopping dockerd $pid ($dir)"
  kill -TERM "$pid"
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "engine: dockerd $pid still running after 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/dockerd.pid"
}
