#!/usr/bin/env bash
# Replays a US Pacific time window of Spade events into the warehouse.
#   replay.sh [options] START END [TABLE ... | --all-tables]
# Everything is passed to `spade replay`; see `replay.sh --help`. The run's log is
# appended to replay.log (--log-file) as the original's `tee -a replay.log` did.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$here/dist/driver/cli/spade.js" ]; then
  (cd "$here" && npm run --silent build)
fi
exec node "$here/dist/driver/cli/spade.js" replay "$@"
