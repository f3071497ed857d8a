#!/usr/bin/env bash
# Runs every test: installs what is missing, then native engine tests on lavapipe (Vulkan on the
# CPU), the release wasm build, and Playwright in headless Chromium with and without WebGPU.
source "$(dirname "$0")/lib.sh"

start=$(date +%s)
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/fetch-models.sh"

log "native tests (GPU kernels on lavapipe)"
(cd "$ROOT" && cargo test --workspace --exclude frontend)

log "site build (release wasm) and debug server"
"$ROOT/scripts/build.sh" --debug

log "Playwright (headless Chromium, SwiftShader WebGPU)"
(cd "$ROOT/end2end" && EDDY_SERVER_BIN="$ROOT/target/debug/server" npx playwright test)

log "all tests passed in $(( $(date +%s) - start )) s; target/ holds $(du -sh "$ROOT/target" | cut -f1)"
