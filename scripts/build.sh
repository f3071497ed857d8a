#!/usr/bin/env bash
# Builds the site (the wasm client, its JS glue, CSS and public assets) into target/site and the
# server binary: the same steps as `cargo leptos build`, without needing cargo-leptos.
#   scripts/build.sh            release server (what the run command uses)
#   scripts/build.sh --debug    debug server (what the tests use; shares the test build's artifacts)
source "$(dirname "$0")/lib.sh"

server_profile=release
[ "${1:-}" = "--debug" ] && server_profile=dev

log "wasm client (Debian rustc-web, -Z build-std, profile wasm-release)"
# Debian's cargo/rustc first on PATH: rustup has no wasm32 target here. A separate target dir keeps
# the two compilers' artifacts apart.
(
  cd "$ROOT"
  PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19 \
    /usr/bin/cargo build -q -p frontend --lib --target wasm32-unknown-unknown \
      --profile wasm-release -Zbuild-std=std,panic_abort --target-dir target/front
)
wasm="$ROOT/target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm"

log "wasm-bindgen + wasm-opt"
pkg="$SITE/pkg"
rm -rf "$pkg.tmp" && mkdir -p "$pkg.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$pkg.tmp" --out-name eddy "$wasm"
# npm's binaryen: Debian's (v108) silently breaks wasm-bindgen 0.2.130 output.
"$ROOT/end2end/node_modules/.bin/wasm-opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-reference-types --enable-sign-ext --enable-mutable-globals \
  "$pkg.tmp/eddy_bg.wasm" -o "$pkg.tmp/eddy.wasm"
rm "$pkg.tmp/eddy_bg.wasm"
cp "$ROOT/style/main.css" "$pkg.tmp/eddy.css"
rm -rf "$pkg" && mv "$pkg.tmp" "$pkg"
cp -r "$ROOT/public/." "$SITE/"
# The service worker's precache list and version, from this build's files.
"$ROOT/scripts/pwa-assets.sh" "$SITE"
printf 'wasm: %s bytes (%s gzipped)\n' "$(stat -c %s "$pkg/eddy.wasm")" "$(gzip -9c "$pkg/eddy.wasm" | wc -c)" >&2

log "server (cargo profile $server_profile)"
(cd "$ROOT" && cargo build -q -p server --profile "$server_profile")
