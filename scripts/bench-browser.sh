#!/usr/bin/env bash
# The real app in headless Chromium on the lent NVIDIA machine (not CI), against native `eddy bench` and
# llama.cpp's WebGPU build (wllama 3.8.1) on the same random-weight GGUFs with real LFM2 shapes, in the same
# browser. Per model, cold (fresh profile: download, verify, upload) and warm (new tab, from IndexedDB): time
# to ready and its throughput, the wasm memory peak, time to first token, prefill and decode; one table.
#
# Here, once:  scripts/bench-browser.sh --prepare
#   builds .bb/ (release server and site, eddy, wllama, ../shared/browser-gpu's driver and unpacker) and
#   .chr/ (the Chromium bundle in 24 MiB parts: a device call carries at most 64 MiB, the working tree
#   included). Both git-ignored.
# There, consecutive calls on one warm machine (it keeps /tmp while warm, ~30 s between calls; put them
# in one batch of tool calls):
#   1. carry [".bb"]                                             scripts/bench-browser.sh --stage
#   2. carry [".chr/chr.tar.xz.part.aa"]                         scripts/bench-browser.sh --stage
#   3. carry [".chr/chr.tar.xz.part.ab"]                         scripts/bench-browser.sh --stage
#   4. carry [".gl", ".whl", ".chr/chr.tar.xz.part.ac"]          scripts/bench-browser.sh [MODEL:TYPE ...]
#   5. (more models while warm) carry [".gl", ".whl"]            scripts/bench-browser.sh lfm2-8b-a1b:q4_0
# Each run appends to /tmp/eddy-browser/results.jsonl and prints the table of every model run so far
# (also $OUT/browser-table.txt, with the raw JSON lines in $OUT/browser.jsonl).
# Default models: LFM2-350M, 1.2B and 2.6B Q4_0 (LFM2-8B-A1B Q4_0 needs a call of its own: ~10 minutes).
# EDDY_BROWSER_FLAGS adds Chromium flags (e.g. --enable-dawn-features=vulkan_enable_f16_on_nvidia).
# EDDY_BROWSER_VARIANTS="decode_ahead=1 decode_ahead=2": after the warm tab, more warm tabs with those link
# parameters, in turn, twice (and eddy bench with the matching flag); a second table compares them.
# EDDY_BROWSER_NO_WLLAMA=1 skips wllama.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
W=/tmp/eddy-browser

prepare() {
  set -e
  local shared="$ROOT/../shared/browser-gpu"
  [ -f .chr/chr.tar.xz.sha256 ] || bash "$shared/build_bundle.sh" .chr
  if [ ! -f .chr/chr.tar.xz.parts ]; then
    # build_bundle.sh writes two ~36 MiB halves; with the working tree they no longer fit one call.
    cat .chr/chr.tar.xz.part.* > .chr/whole && rm .chr/chr.tar.xz.part.*
    split -b 24M .chr/whole .chr/chr.tar.xz.part. && rm .chr/whole
    ls .chr/chr.tar.xz.part.* | wc -l > .chr/chr.tar.xz.parts
  fi
  scripts/build.sh
  cargo build --release -q -p engine --bin eddy
  rm -rf .bb && mkdir -p .bb
  strip -o .bb/server target/release/server && xz -6 -T2 .bb/server
  strip -o .bb/eddy target/release/eddy && xz -6 -T2 .bb/eddy
  tar cJf .bb/site.tar.xz -C target site
  (cd .bb && npm pack -q @wllama/wllama@3.8.1 > /dev/null)
  cp "$shared/cdp.py" "$shared/unpack.sh" "$shared/examples/wllama.html" "$shared/examples/serve.py" .chr/chr.tar.xz.sha256 .chr/chr.tar.xz.parts .bb/
  du -sh .bb .chr/chr.tar.xz.part.*
}

# Copies whatever this call carried into $W and unpacks what is complete.
stage() {
  mkdir -p "$W/chr-parts" "$W/wllama-site"
  [ -d .bb ] && cp -a .bb/. "$W/"
  cp -a .chr/chr.tar.xz.part.* "$W/chr-parts/" 2>/dev/null
  if [ -f "$W/server.xz" ]; then xz -dc "$W/server.xz" > "$W/server" && chmod +x "$W/server" && rm "$W/server.xz"; fi
  if [ -f "$W/eddy.xz" ]; then xz -dc "$W/eddy.xz" > "$W/eddy" && chmod +x "$W/eddy" && rm "$W/eddy.xz"; fi
  if [ -f "$W/site.tar.xz" ]; then tar xJf "$W/site.tar.xz" -C "$W" && rm "$W/site.tar.xz"; fi
  if ls "$W"/wllama-wllama-*.tgz > /dev/null 2>&1; then
    mkdir -p "$W/wllama-site/wllama" && tar xzf "$W"/wllama-wllama-*.tgz -C "$W/wllama-site/wllama" && rm "$W"/wllama-wllama-*.tgz
    cp "$W/wllama.html" "$W/wllama-site/"
  fi
  local have; have=$(ls "$W"/chr-parts/chr.tar.xz.part.* 2>/dev/null | wc -l)
  if [ ! -x /opt/chr/chromium/chromium-headless-shell ] && [ -f "$W/chr.tar.xz.parts" ] && [ "$have" -eq "$(cat "$W/chr.tar.xz.parts")" ]; then
    bash "$W/unpack.sh" "$W/chr-parts" "$W/chr.tar.xz.sha256" /opt > "$W/chr.env" && rm -rf "$W/chr-parts"
  fi
  ls "$W"
}

case "${1:-}" in
  --prepare) prepare; exit ;;
  --stage) stage; exit ;;
esac

source scripts/device-lib.sh
out="${OUT:-/tmp/out}"
mkdir -p "$out"
stage > /dev/null
for need in "$W/server" "$W/eddy" "$W/site" "$W/cdp.py" "$W/chr.env" "$W/wllama-site/wllama"; do
  [ -e "$need" ] || { echo "not staged: $need (run the calls in order on one warm machine)"; exit 2; }
done
device_setup
source "$W/chr.env"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(lfm2-350m:q4_0 lfm2-1.2b:q4_0 lfm2-2.6b:q4_0)
generate_models "${models[@]}"
ids=()
for m in "${models[@]}"; do
  id="${m%%:*}-${m##*:}"; f="/tmp/models/$id.gguf"
  [ -f "$f" ] || { echo "generation failed: $(tail -3 "$f.log")"; continue; }
  [ -f "$W/models/$id/manifest.json" ] || "$W/server" import "$f" --models-dir "$W/models" --id "$id" || continue
  ids+=("$id")
done
ln -sfn /tmp/models "$W/wllama-site/models"
"$W/server" serve --addr 127.0.0.1:3000 --site-root "$W/site" --models-dir "$W/models" > "$out/server.log" 2>&1 &
server_pid=$!
python3 "$W/serve.py" "$W/wllama-site" 8090 &
static_pid=$!
trap 'kill $server_pid $static_pid 2>/dev/null' EXIT
sleep 1
CHROME_STDERR="$out/chrome.log" python3 scripts/bench_browser.py --chrome "$CHROME" --cdp "$W" \
  --app http://127.0.0.1:3000 --wllama http://127.0.0.1:8090 --eddy "$W/eddy" --models /tmp/models \
  --results "$W/results.jsonl" --flags="${EDDY_BROWSER_FLAGS:-}" --variants="${EDDY_BROWSER_VARIANTS:-}" \
  ${EDDY_BROWSER_NO_WLLAMA:+--no-wllama} "${ids[@]}" 2> "$out/driver.log" | tee "$out/browser-table.txt"
cp "$W/results.jsonl" "$out/browser.jsonl"
