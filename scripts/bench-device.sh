#!/usr/bin/env bash
# Benchmarks on a lent NVIDIA machine (not CI): random-weight GGUFs with real LFM2 shapes,
# generated there with ../shared/bench/make_random_gguf.py, then `eddy bench` on each.
# Carried: .gl (Vulkan loader debs), .whl (the gguf wheel), .bench/eddy (a release build) and
# .bench/make_random_gguf.py. Results: $OUT/bench.jsonl.
#   scripts/bench-device.sh [MODEL:TYPE ...]     default: the four of the engine issue
set -u
cd "$(dirname "$0")/.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
out="${OUT:-/tmp/out}"
mkdir -p "$out" /tmp/models
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(lfm2-350m:q4_0 lfm2-1.2b:q4_0 lfm2-1.2b:f16 lfm2-8b-a1b:q4_0)
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv,noheader | tee "$out/gpu.txt"
# Generate all models in parallel (numpy, one core each), then benchmark one at a time.
for m in "${models[@]}"; do
  name="${m%%:*}"; type="${m##*:}"
  python3 .bench/make_random_gguf.py "$name" "$type" "/tmp/models/$name-$type.gguf" > "/tmp/models/$name-$type.log" 2>&1 &
done
wait
for m in "${models[@]}"; do
  name="${m%%:*}"; type="${m##*:}"
  f="/tmp/models/$name-$type.gguf"
  [ -f "$f" ] || { echo "generation failed: $(tail -3 /tmp/models/$name-$type.log)"; continue; }
  .bench/eddy bench --model "$f" --prompt-len 512 --gen-len 128 --json ${EDDY_BENCH_ARGS:-} 2>"$out/$name-$type.err" | tee -a "$out/bench.jsonl"
  tail -2 "$out/$name-$type.err"
done
python3 - "$out/bench.jsonl" <<'PY'
import json, sys
print(f"{'model':42} {'pp512 tok/s':>12} {'tg128 tok/s':>12} {'roofline':>9} {'%':>6}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['model'].split('/')[-1]:42} {r['prefill_tokens_per_s']:12.1f} {r['decode_tokens_per_s']:12.1f} {r['roofline_tokens_per_s']:9.0f} {100*r['fraction_of_roofline']:6.1f}")
PY
