#!/usr/bin/env bash
# Replays a US Pacific time window of Spade events into the warehouse.
#   replay.sh [options] START END [TABLE ... | --all-tables]
#   replay.sh MASTER_IP REDSHIFT_TARGET START END [TABLE ... | --all-tables]   (the original's form: Spark)
#   replay.sh --tmux ...   the same run in a new detached tmux session named after the runtag
# Everything is passed to `spade replay`; see `replay.sh --help`. The run's log is
# appended to replay.log (--log-file) as the original's `tee -a replay.log` did.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$here/dist/driver/cli/spade.js" ]; then
  (cd "$here" && npm run --silent build)
fi

tmux=false
args=()
runtag=""
namespace=""
prev=""
for a in "$@"; do
  case "$a" in
    --tmux) tmux=true; prev=""; continue ;;
    --runtag=*) runtag="${a#--runtag=}" ;;
    --namespace=*) namespace="${a#--namespace=}" ;;
  esac
  case "$prev" in
    --runtag) runtag="$a" ;;
    --namespace) namespace="$a" ;;
  esac
  args+=("$a")
  prev="$a"
done

if ! $tmux; then
  exec node "$here/dist/driver/cli/spade.js" replay "${args[@]}"
fi

# --tmux: the same command, detached, in a session named after the runtag (the
# default runtag is fixed here, as spade would make it, so the two agree).
if ! command -v tmux >/dev/null 2>&1; then
  echo "replay.sh --tmux: tmux is not installed (e.g. apt-get install tmux)" >&2
  exit 1
fi
if [ -z "$runtag" ]; then
  runtag="$(date -u +%Y%m%dT%H%M%S)"
  [ -n "$namespace" ] && runtag="$namespace-$runtag"
  args+=(--runtag "$runtag")
fi
session="${runtag//./_}" # tmux does not allow '.' in session names
if tmux has-session -t "=$session" 2>/dev/null; then
  echo "replay.sh --tmux: a tmux session named $session exists already (tmux attach -t $session)" >&2
  exit 1
fi
# The session runs a private script (mode 600, deleted as it starts) holding this
# environment, credentials included, so they are on no command line.
script="$(mktemp)"
chmod 600 "$script"
{
  export -p
  printf 'rm -f %q\n' "$script"
  printf 'cd %q\n' "$PWD"
  printf '%q ' "$here/replay.sh" "${args[@]}"
  printf '\nstatus=$?\necho; echo "replay.sh exited with code $status (Enter closes this window)"; read -r _\n'
} >"$script"
tmux new-session -d -s "$session" "bash $(printf %q "$script")"
echo "replay started in tmux session $session; attach with: tmux attach -t $session"
