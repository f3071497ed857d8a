#!/usr/bin/env bash
# Writes SITE/sw.js from public/sw.js: the release's app-shell asset list and a
# version that changes whenever any of those files does.
#   scripts/pwa-assets.sh [SITE]     (default target/site; build.sh runs it)
source "$(dirname "$0")/lib.sh"
site="${1:-$SITE}"
cd "$site"
# The shell: the page ("/", rendered by the server; it changes with the wasm), the client, styles,
# the worker, the manifest and icons. Never anything under /models/.
files=(pkg/eddy.js pkg/eddy.wasm pkg/eddy.css worker.js pwa.js manifest.webmanifest favicon.svg)
for f in icons/*.png; do files+=("$f"); done
for f in "${files[@]}"; do [ -f "$f" ] || die "pwa-assets: $site/$f is missing (build first)"; done
version=$(sha256sum "${files[@]}" | sha256sum | cut -c1-16)
assets="['/'"
for f in "${files[@]}"; do assets+=", '/$f'"; done
assets+="]"
sed -e "s|^const VERSION = .*;\$|const VERSION = '$version';|" -e "s|^const ASSETS = .*;\$|const ASSETS = $assets;|" \
  "$ROOT/public/sw.js" > sw.js.tmp
grep -q "^const VERSION = '$version';" sw.js.tmp || die "pwa-assets: public/sw.js has no 'const VERSION = ...;' line"
mv sw.js.tmp sw.js
echo "service worker: shell version $version, ${#files[@]} files + /" >&2
