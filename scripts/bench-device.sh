#!/usr/bin/env bash
# Eddy and llama.cpp (CUDA) side by side on a lent NVIDIA machine (not CI), in one run:
#  1. builds llama.cpp's llama-bench with CUDA there (in the background, from the source tarball),
#  2. generates random-weight GGUFs with the real LFM2 shapes there (make_random_gguf.py),
#  3. once the build is done (nothing else running), runs `eddy bench` (pp512, tg128, tg128 at depth
#     4096, tg128 with LFM2's recommended sampling, and, in a run of its own, a per-dispatch profile) and `llama-bench -p 512 -n 128 -fa 1 -r 5` plus
#     `-p 0 -n 128 -d 4096` on the very same files,
#  4. prints one table (Eddy ÷ llama.cpp), also written to $OUT/table.txt.
# Prepare here (git-ignored, carried with the call: carry .gl .whl .bench):
#   .gl/*.deb                   the Vulkan loader (see the device README)
#   .whl/gguf-*.whl             the gguf package (python3 -m pip download gguf -d .whl)
#   .bench/eddy                 a release build: cargo build --release -p engine --bin eddy
#   .bench/build-llama-cpp.sh   ../shared/bench/build-llama-cpp.sh
#   .bench/llama.cpp.tar.xz     ../shared/bench/fetch-llama-cpp.sh .bench/llama.cpp.tar.xz
# Usage: scripts/bench-device.sh [MODEL:TYPE ...]   (default: the six models of the speed issue)
#   EDDY_ONLY=1 skips llama.cpp; EDDY_BENCH_ARGS adds flags to every eddy run.
set -u
cd "$(dirname "$0")/.."
source scripts/device-lib.sh
device_setup
out="${OUT:-/tmp/out}"
mkdir -p "$out" /tmp/models
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("${DEFAULT_MODELS[@]}")
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv,noheader | tee "$out/gpu.txt"
LLAMA=/tmp/llama/llama.cpp/build/bin/llama-bench
if [ -z "${EDDY_ONLY:-}" ] && [ ! -x "$LLAMA" ]; then
  (bash .bench/build-llama-cpp.sh .bench/llama.cpp.tar.xz /tmp/llama > "$out/build.log" 2>&1) &
  build_pid=$!
fi
# Generate the models in parallel (numpy, one core each) while llama.cpp builds, then wait for the build:
# timing Eddy while the compiler holds all 16 cores slowed its decode (2026-12-02: 350M 1,187 tok/s
# against 1,449 on an idle machine; its GPU waits grew from 0.35 to 0.52 ms per token).
generate_models "${models[@]}"
[ -n "${build_pid:-}" ] && wait "$build_pid"
: > "$out/eddy.jsonl"; : > "$out/profiles.txt"
for m in "${models[@]}"; do
  name="${m%%:*}"; type="${m##*:}"; f="/tmp/models/$name-$type.gguf"
  [ -f "$f" ] || { echo "generation failed: $(tail -3 "$f.log")"; continue; }
  e=".bench/eddy bench --model $f --json ${EDDY_BENCH_ARGS:-}"
  echo "== $name-$type" >> "$out/profiles.txt"
  # Timed without --profile: its timestamp queries slowed decode by up to 17% (350M, 2026-12-01).
  $e --prompt-len 512 --gen-len 128 --repeat 3 2>/dev/null | sed 's/^{/{"run":"main",/' >> "$out/eddy.jsonl"
  $e --prompt-len 512 --gen-len 16 --repeat 1 --profile 2>> "$out/profiles.txt" | sed 's/^{/{"run":"profile",/' >> "$out/eddy.jsonl"
  $e --prompt-len 512 --gen-len 128 --repeat 1 --depth 4096 2>/dev/null | sed 's/^{/{"run":"depth",/' >> "$out/eddy.jsonl"
  $e --prompt-len 512 --gen-len 128 --repeat 2 --temperature 0.3 --min-p 0.15 --repeat-penalty 1.05 2>/dev/null | sed 's/^{/{"run":"sampled",/' >> "$out/eddy.jsonl"
done
: > "$out/llama.jsonl"
if [ -z "${EDDY_ONLY:-}" ]; then
  if [ -x "$LLAMA" ]; then
    for m in "${models[@]}"; do
      name="${m%%:*}"; type="${m##*:}"; f="/tmp/models/$name-$type.gguf"
      [ -f "$f" ] || continue
      "$LLAMA" -m "$f" -p 512 -n 128 -fa 1 -r 5 -ngl 99 -o jsonl 2>/dev/null | sed "s|^{|{\"file\":\"$f\",|" >> "$out/llama.jsonl"
      "$LLAMA" -m "$f" -p 0 -n 128 -d 4096 -fa 1 -r 3 -ngl 99 -o jsonl 2>/dev/null | sed "s|^{|{\"file\":\"$f\",|" >> "$out/llama.jsonl"
    done
  else
    echo "llama-bench did not build: $(tail -5 "$out/build.log")"
  fi
fi
python3 - "$out" <<'PY' | tee "$out/table.txt"
import json, sys, os
out = sys.argv[1]
eddy = {}
for line in open(os.path.join(out, "eddy.jsonl")):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    eddy.setdefault(os.path.basename(r["model"]), {})[r["run"]] = r
llama = {}
for line in open(os.path.join(out, "llama.jsonl")):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    key = ("pp" if r["n_prompt"] else "tg") + ("@d%d" % r["n_depth"] if r.get("n_depth") else "")
    llama.setdefault(os.path.basename(r["file"]), {})[key] = r["avg_ts"]
def ratio(a, b):
    return f"{a / b:5.2f}" if a and b else "    -"
head = f"{'model':24} {'pp512 eddy':>11} {'llama':>9} {'÷':>5} {'tg128 eddy':>11} {'llama':>8} {'÷':>5} {'tg@4096 eddy':>13} {'llama':>8} {'÷':>5} {'tg sampled':>11} {'roofline%':>9}"
print(head)
for name, runs in eddy.items():
    m, d, s = runs.get("main", {}), runs.get("depth", {}), runs.get("sampled", {})
    l = llama.get(name, {})
    pp, tg = m.get("prefill_tokens_per_s_mean", 0), m.get("decode_tokens_per_s_mean", 0)
    tgd, tgs = d.get("decode_tokens_per_s_mean", 0), s.get("decode_tokens_per_s_mean", 0)
    lpp, ltg, ltgd = l.get("pp", 0), l.get("tg", 0), l.get("tg@d4096", 0)
    roof = 100 * tg / m["roofline_tokens_per_s"] if m.get("roofline_tokens_per_s") else 0
    print(f"{name.replace('.gguf',''):24} {pp:11.0f} {lpp:9.0f} {ratio(pp, lpp)} {tg:11.1f} {ltg:8.1f} {ratio(tg, ltg)} {tgd:13.1f} {ltgd:8.1f} {ratio(tgd, ltgd)} {tgs:11.1f} {roof:8.1f}%")
print("eddy: mean of 3 runs (depth: 1, sampled: 2; temperature 0.3, min_p 0.15, repetition penalty 1.05); llama-bench: avg_ts of -r 5 (depth: -r 3), -fa 1, -ngl 99")
PY
