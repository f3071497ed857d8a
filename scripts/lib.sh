# Shared settings for Eddy's scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Models and reference data that live beside the repository (never committed).
# Downloads (verified by sha256) and generated test data.
CACHE="${EDDY_CACHE:-$ROOT/.cache}"
# The site the server hosts: pkg/ (wasm, JS, CSS) and public/.
SITE="$ROOT/target/site"
export ROOT CACHE SITE

# rustup's cargo first for native builds; the wasm build calls Debian's /usr/bin/cargo explicitly.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# The wasm-bindgen version that Cargo.lock pins; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Mesa's Vulkan drivers complain on every start when this is unset (headless CI).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="/tmp/eddy-runtime-$(id -u)"
  mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
fi
