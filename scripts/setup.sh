#!/usr/bin/env bash
# Installs what Eddy needs to build, run and test, from the package registries only
# (Debian, crates.io, npm). Idempotent: what is already there at the right version is reused.
source "$(dirname "$0")/lib.sh"

# --- Debian packages -------------------------------------------------------------------------
# rustc-web/cargo-web/rust-web-src (1.96, bookworm-security) + lld-19: the wasm32 compiler with
# std sources for -Z build-std (rustup cannot download the wasm32 target here).
# chromium: the browser Playwright drives. mesa-vulkan-drivers + libvulkan1: lavapipe, the CPU
# Vulkan device the native GPU tests run on.
APT_PACKAGES=(rustc-web cargo-web rust-web-src lld-19 chromium mesa-vulkan-drivers libvulkan1)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ -x /usr/bin/rustc ] && ! /usr/bin/rustc --version | grep -qE '^rustc 1\.(9[6-9]|[1-9][0-9]{2})'; then
  missing+=(rustc-web cargo-web rust-web-src)  # too old: take bookworm-security's 1.96
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt packages: present"
fi
/usr/bin/rustc --version | grep -qE '^rustc 1\.(9[6-9]|[1-9][0-9]{2})' || die "/usr/bin/rustc is $(/usr/bin/rustc --version); need rustc-web 1.96+"
command -v wasm-ld-19 >/dev/null || die "wasm-ld-19 missing (package lld-19)"

# --- Rust (native) ---------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"

# --- wasm-bindgen-cli, exactly the version in Cargo.lock -------------------------------------
want="$(wasm_bindgen_version)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have" != "$want" ]; then
  log "cargo install wasm-bindgen-cli $want (a few minutes)"
  # Without --locked: one of its locked dependencies is missing from the crates.io mirror.
  # opt-level 1: it runs for seconds per build, and compiles faster so (CI's two cores).
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install -q wasm-bindgen-cli --version "$want" --force
else
  log "wasm-bindgen-cli $want: present"
fi

# --- Node packages: Playwright (driving Debian's chromium, no browser download) and binaryen --
command -v npm >/dev/null || { log "apt: installing nodejs npm"; as_root apt-get install -y -qq nodejs npm >/dev/null; }
stamp="$ROOT/end2end/node_modules/.eddy-lock-sha256"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(sha256_of "$ROOT/end2end/package-lock.json")" ]; then
  log "npm ci (end2end: @playwright/test, binaryen)"
  (cd "$ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  sha256_of "$ROOT/end2end/package-lock.json" > "$stamp"
else
  log "npm packages: present"
fi

# --- Python (tests only): numpy + gguf, to generate random-weight GGUFs with real LFM2 shapes --
venv="$CACHE/venv"
if ! "$venv/bin/python" -c "import numpy, gguf" 2>/dev/null; then
  log "python venv (numpy, gguf) for test models"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy==2.4.6 gguf==0.19.0
else
  log "python venv: present"
fi
