#!/bin/sh
# llmbox in-box entrypoint. The spoke injects this file at /usr/local/lib/llmbox/entrypoint
# and runs it as the box's command on a 1000-column TTY:
#
#   entrypoint <box-id> [remote-control args...]
#
# 0. Prepare the home and the workspace shared with the exec user (see below).
# 1. Sign in, only when no credentials exist yet (a restarted box resumes without a new code):
#    `claude auth login` prints the authorize URL and waits for the code on this TTY. A code
#    that does not work ends that login; the box stays up and starts a fresh login (a new URL)
#    for another try, up to LLMBOX_LOGIN_ATTEMPTS times.
# 2. Serve: `claude remote-control --name <box-id>` under a fresh PTY (script), which its TUI
#    needs to reach "ready". The session URL it prints is what the spoke waits for.
set -u

box_id=${1:?usage: entrypoint <box-id> [remote-control args...]}
shift
credentials=${HOME:-/root}/.claude/.credentials.json
attempts=${LLMBOX_LOGIN_ATTEMPTS:-5}

# Claude prints nothing on a console without a size.
stty cols 1000 rows 50 2>/dev/null || true

# Claude's home is its own: the exec user (another container, another uid) never reads it.
chmod 0700 "${HOME:-/root}" 2>/dev/null || true
# The workspace is shared with the exec user's group: group-writable, new files inherit the
# group (setgid) and are group-writable (umask), and the sticky bit keeps each side from
# deleting or renaming the other's top-level entries. Claude's project settings
# (/workspace/.claude, .mcp.json) belong to root, so the exec user cannot plant hooks,
# permissions or MCP servers that Claude would run as itself.
umask 0002
if [ -n "${LLMBOX_EXEC_GID:-}" ] && [ -d /workspace ]; then
  chown "0:$LLMBOX_EXEC_GID" /workspace && chmod 3775 /workspace
  for entry in /workspace/.claude /workspace/.mcp.json; do
    # shellcheck disable=SC2012,SC2046 # ls -ldn is the one owner query every image has
    if [ -L "$entry" ] || { [ -e "$entry" ] && [ "$(set -- $(ls -ldn "$entry"); echo "$3")" != 0 ]; }; then
      mv -f "$entry" "$entry.untrusted.$$"
    fi
  done
  mkdir -p /workspace/.claude && chown 0:0 /workspace/.claude && chmod 0755 /workspace/.claude
  [ -e /workspace/.mcp.json ] || echo '{"mcpServers":{}}' > /workspace/.mcp.json
  chown 0:0 /workspace/.mcp.json && chmod 0644 /workspace/.mcp.json
fi

signed_in() {
  [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ] || [ -s "$credentials" ]
}

attempt=0
while ! signed_in; do
  attempt=$((attempt + 1))
  if [ "$attempt" -gt "$attempts" ]; then
    echo "llmbox: sign-in failed $attempts times; destroy this box and create a new one"
    exit 1
  fi
  if claude auth login --claudeai; then
    break
  fi
  echo "llmbox: sign-in did not complete (attempt $attempt of $attempts)"
done

# The box id is a DNS label (validated by the spoke), so it is safe inside the quotes.
exec script -qfec "claude remote-control --name $box_id $*" /dev/null
