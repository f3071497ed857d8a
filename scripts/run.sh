#!/usr/bin/env bash
# Runs Eddy: installs what is missing, builds in release, prepares the default models and serves.
#   scripts/run.sh [--addr 127.0.0.1:3000]      (or EDDY_ADDR=...)
source "$(dirname "$0")/lib.sh"

addr="${EDDY_ADDR:-127.0.0.1:3000}"
if [ "${1:-}" = "--addr" ]; then addr="$2"; fi

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/fetch-models.sh"
"$ROOT/scripts/build.sh"

# The default models, imported once: tiny-lfm2 (a test fixture), SmolLM2-135M-Instruct and Gemma 3 270M.
server="$ROOT/target/release/server"
models="${EDDY_MODELS_DIR:-$ROOT/models}"
if [ -f "$ROOT/fixtures/models/tiny-lfm2/tiny-lfm2-f32.gguf" ] && [ ! -f "$models/tiny-lfm2/manifest.json" ]; then
  log "importing tiny-lfm2"
  "$server" import "$ROOT/fixtures/models/tiny-lfm2/tiny-lfm2-f32.gguf" --models-dir "$models" --id tiny-lfm2 --name "Tiny LFM2 (random weights, for tests)" --chunk-size 262144
fi
if [ ! -f "$models/smollm2-135m-instruct/manifest.json" ]; then
  log "importing SmolLM2-135M-Instruct"
  "$server" import "$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf" --models-dir "$models" --id smollm2-135m-instruct --name "SmolLM2 135M Instruct"
fi
if [ ! -f "$models/gemma-3-270m/manifest.json" ]; then
  log "importing Gemma 3 270M"
  "$server" import "$CACHE/models/gemma-3-270m-q4_k_m.gguf" --models-dir "$models" --id gemma-3-270m --name "Gemma 3 270M (pretrained)"
fi
log "serving on http://$addr"
exec "$server" serve --addr "$addr" --site-root "$SITE" --models-dir "$models"
