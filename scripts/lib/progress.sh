# shellcheck shell=bash
# Progress for long set-up work whose own tool is silent: waits for a background process and,
# every few seconds while it runs, lets the caller say how far it got. Sourced by
# deploy/box/fetch-claude and deploy/box/build-image.
#
#   npm pack ... &
#   say() { echo "still downloading after $1 s" >&2; }
#   progress_while $! 5 say || { echo "npm pack failed" >&2; exit 1; }
#
#   progress_while PID EVERY SAY   waits for PID (a child of this shell) to end; every EVERY
#                                  seconds while it still runs calls the function SAY with the
#                                  seconds waited so far; returns PID's exit status

progress_while() {
  local pid=$1 every=$2 say=$3 waited=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if ((waited % every == 0)) && kill -0 "$pid" 2>/dev/null; then
      "$say" "$waited"
    fi
  done
  wait "$pid"
}
