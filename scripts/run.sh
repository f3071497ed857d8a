#!/usr/bin/env bash
# Runs Eddy: installs what is missing, builds in release, prepares the default models and serves.
#   scripts/run.sh [--addr 127.0.0.1:3000]      (or EDDY_ADDR=...)
source "$(dirname "$0")/lib.sh"

addr="${EDDY_ADDR:-127.0.0.1:3000}"
if [ "${1:-}" = "--addr" ]; then addr="$2"; fi

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/fetch-models.sh"
"$ROOT/scripts/build.sh"
log "serving on http://$addr"
exec "$ROOT/target/release/server" serve --addr "$addr" --site-root "$SITE"
