# shellcheck shell=bash
# Starts and stops an isolated Docker engine: its own data root, exec root, socket, pidfile
# and bridge, so it never disturbs another engine on the machine. Sourced by tests/rig/rig and
# scripts/llmbox-up.
#
#   engine_start STATE_DIR BRIDGE CIDR POOL [DOCKERD_ARG...]
#                                             start (or reuse) the engine kept in STATE_DIR;
#                                             extra arguments go to dockerd (a TCP+TLS listener)
#   engine_stop STATE_DIR                     stop it by the pid in its pidfile (never by name),
#                                             then remove what dockerd leaves behind: its
#                                             bridges and their iptables rules (and Docker's
#                                             own chains once no dockerd runs at all)
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
  # What engine_stop needs to find this engine's bridges and rules again, even after a crash.
  echo "$bridge $cidr $pool" >"$dir/network"
  [[ -f "$dir/ip_forward.before" ]] || cat /proc/sys/net/ipv4/ip_forward >"$dir/ip_forward.before" 2>/dev/null || true
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
    # One that crashed left its bridges and rules all the same.
    engine_clean_network "$dir"
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
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$dir/dockerd.pid"
  engine_clean_network "$dir"
  # Its socket and exec root, unless something is still mounted there.
  local run
  run=$(engine_run_dir "$dir")
  if [[ -d "$run" ]] && ! grep -q " $run/" /proc/mounts; then rm -rf "$run"; fi
}

# 10.211.8.1 -> its value as a 32-bit number.
engine_ip_number() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# Whether address or network $1 (a.b.c.d[/n]) lies in network $2 (a.b.c.d/n).
engine_in_net() {
  local ip=${1%/*} net=${2%/*} bits=${2#*/} mask
  [[ "$ip" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || return 1
  mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
  (($(($(engine_ip_number "$ip") & mask)) == $(($(engine_ip_number "$net") & mask))))
}

# Whether a dockerd process runs on this machine (any engine: the rig's, the system's).
engine_any_dockerd() {
  local comm
  for comm in /proc/[0-9]*/comm; do
    [[ "$(cat "$comm" 2>/dev/null)" == dockerd ]] && return 0
  done
  return 1
}

# Deletes the rules of iptables table $1 for which the function named $2 (given the rule's
# words) succeeds.
engine_delete_rules() {
  local table=$1 match=$2 rule words
  iptables -t "$table" -S 2>/dev/null | grep '^-A ' | while read -r rule; do
    read -ra words <<<"$rule"
    if "$match" "${words[@]}"; then
      words[0]=-D
      iptables -t "$table" "${words[@]}" 2>/dev/null || true
    fi
  done
}

# What dockerd leaves behind when it stops, for the engine of STATE_DIR $1: the Linux bridges of
# its networks (the default one engine_start made, and each network's from its pool), the
# iptables rules that name them or their addresses, and (when no dockerd runs any more)
# Docker's own chains and the jumps to them, and the ip_forward setting engine_start changed.
# Another engine's bridges, pool and rules are never touched.
engine_clean_network() {
  local dir=$1 bridge cidr pool name addr links=()
  [[ -f "$dir/network" ]] || return 0
  read -r bridge cidr pool <"$dir/network"
  command -v iptables >/dev/null || return 0
  while read -r _ name _ addr _; do
    if engine_in_net "$addr" "$pool"; then links+=("$name"); fi
  done < <(ip -4 -o addr show type bridge 2>/dev/null)
  ip link show "$bridge" >/dev/null 2>&1 && links+=("$bridge")
  ENGINE_CLEAN_LINKS=" ${links[*]} " ENGINE_CLEAN_NETS="$pool $cidr" engine_delete_rules filter engine_rule_is_ours
  ENGINE_CLEAN_LINKS=" ${links[*]} " ENGINE_CLEAN_NETS="$pool $cidr" engine_delete_rules nat engine_rule_is_ours
  for name in "${links[@]}"; do
    ip link delete "$name" 2>/dev/null || true
  done
  if ! engine_any_dockerd; then
    engine_delete_rules filter engine_rule_jumps_to_docker
    engine_delete_rules nat engine_rule_jumps_to_docker
    for name in DOCKER DOCKER-USER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2; do
      iptables -t filter -F "$name" 2>/dev/null && iptables -t filter -X "$name" 2>/dev/null
    done
    iptables -t nat -F DOCKER 2>/dev/null && iptables -t nat -X DOCKER 2>/dev/null
    if [[ -f "$dir/ip_forward.before" ]]; then
      sysctl -qw "net.ipv4.ip_forward=$(<"$dir/ip_forward.before")" >/dev/null 2>&1 || true
    fi
  fi
  rm -f "$dir/ip_forward.before"
  echo "engine: removed ${#links[@]} bridge(s) and their iptables rules (${links[*]})"
}

# A rule (its words) that names one of $ENGINE_CLEAN_LINKS as in or out interface, or has a
# source or destination in one of $ENGINE_CLEAN_NETS.
engine_rule_is_ours() {
  local previous="" word net
  for word in "$@"; do
    case $previous in
      -i | -o) [[ "$ENGINE_CLEAN_LINKS" == *" $word "* ]] && return 0 ;;
      -s | -d)
        for net in $ENGINE_CLEAN_NETS; do
          engine_in_net "$word" "$net" && return 0
        done
        ;;
    esac
    previous=$word
  done
  return 1
}

# A rule (its words) in a chain of the kernel's that jumps to one of Docker's chains.
engine_rule_jumps_to_docker() {
  [[ "$2" != DOCKER* && "${*: -1}" == DOCKER* && "${*: -2:1}" == -j ]]
}
